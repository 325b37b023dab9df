/// How many STUN checks needing an HMAC each source may have per second:
/// a flood under a known ufrag with a wrong password costs one HMAC per
/// datagram, so beyond the budget it is dropped before the HMAC. Counted
/// in one-second windows per key (the source's IP address: a flood from
/// many ports of one host is one flood). The table is bounded: when full,
/// stale windows go; a key that still finds no room shares one overflow
/// window with every other such key, so spoofing many sources cannot grow
/// memory nor buy more than `limit` more HMACs a second.
struct STUNCheckBudget<Key: Hashable> {
    let limit: Int
    let capacity: Int
    private var windows: [Key: Window] = [:]
    private var overflow = Window(start: .zero, count: 0)

    private struct Window {
        var start: Duration
        var count: Int
    }

    init(limit: Int, capacity: Int = 4096) {
        self.limit = limit
        self.capacity = capacity
    }

    /// Whether a check from `key` at `now` may be verified; counts it if so.
    mutating func admit(_ key: Key, at now: Duration) -> Bool {
        if windows[key] == nil, windows.count >= capacity {
            windows = windows.filter { now - $0.value.start < .seconds(1) }
            if windows.count >= capacity { return Self.take(&overflow, limit: limit, at: now) }
        }
        var window = windows[key] ?? Window(start: now, count: 0)
        let admitted = Self.take(&window, limit: limit, at: now)
        windows[key] = window
        return admitted
    }

    var trackedKeys: Int { windows.count }

    private static func take(_ window: inout Window, limit: Int, at now: Duration) -> Bool {
        if now - window.start >= .seconds(1) { window = Window(start: now, count: 0) }
        guard window.count < limit else { return false }
        window.count += 1
        return true
    }
}
