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
    private var windows: [Key: RateWindow] = [:]
    private var overflow = RateWindow()

    init(limit: Int, capacity: Int = 4096) {
        self.limit = limit
        self.capacity = capacity
    }

    /// Whether a check from `key` at `now` may be verified; counts it if so.
    mutating func admit(_ key: Key, at now: Duration) -> Bool {
        if windows[key] == nil, windows.count >= capacity {
            windows = windows.filter { now - $0.value.start < .seconds(1) }
            if windows.count >= capacity { return overflow.take(limit: limit, at: now) }
        }
        var window = windows[key] ?? RateWindow(start: now)
        let admitted = window.take(limit: limit, at: now)
        windows[key] = window
        return admitted
    }

    var trackedKeys: Int { windows.count }
}

/// Events counted in one-second windows: at most `limit` in a window that
/// starts with the first event after the previous one ended.
struct RateWindow {
    private(set) var start: Duration = .zero
    private(set) var count = 0

    init(start: Duration = .zero) {
        self.start = start
    }

    /// Counts one event at `now` if the window has room; false when it has none.
    mutating func take(limit: Int, at now: Duration) -> Bool {
        if now - start >= .seconds(1) { (start, count) = (now, 0) }
        guard count < limit else { return false }
        count += 1
        return true
    }
}
