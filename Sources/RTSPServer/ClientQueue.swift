import DequeModule

/// One client's queue of RTP packets waiting for its socket, bounded in
/// bytes: when a packet would pass the bound, everything queued goes and
/// the client waits for the next GOP start, so it loses whole GOPs (its
/// picture freezes, then resumes decodable) and never holds the pipeline
/// or other clients back. A value, tested without I/O.
struct ClientQueue<Item>: Sendable where Item: Sendable {
    let limit: Int
    private(set) var items: Deque<(item: Item, size: Int)> = []
    private(set) var bytes = 0
    /// Until a GOP start arrives, packets are dropped (a joiner, or after a drop).
    private(set) var waitingForGOP: Bool
    private(set) var gopsDropped: UInt64 = 0
    private(set) var packetsDropped: UInt64 = 0
    private(set) var bytesDropped: UInt64 = 0

    init(limit: Int, waitingForGOP: Bool = true) {
        self.limit = limit
        self.waitingForGOP = waitingForGOP
    }

    var isEmpty: Bool { items.isEmpty }

    /// Queues `item` unless the client is waiting for a GOP or the bound is reached.
    /// Returns whether it was queued.
    @discardableResult
    mutating func push(_ item: Item, size: Int, startsGOP: Bool) -> Bool {
        if startsGOP { waitingForGOP = false }
        if waitingForGOP {
            packetsDropped &+= 1
            bytesDropped &+= UInt64(size)
            return false
        }
        if bytes + size > limit {
            // The GOP in flight is lost from here: its queued part and what follows up to the next start.
            packetsDropped &+= UInt64(items.count) &+ 1
            bytesDropped &+= UInt64(bytes + size)
            items.removeAll()
            bytes = 0
            gopsDropped &+= 1
            // A GOP start that fits alone begins afresh; anything else waits for the next one.
            guard startsGOP, size <= limit else {
                waitingForGOP = true
                return false
            }
            packetsDropped &-= 1
            bytesDropped &-= UInt64(size)
            items.append((item, size))
            bytes = size
            return true
        }
        items.append((item, size))
        bytes += size
        return true
    }

    mutating func pop() -> Item? {
        guard let first = items.popFirst() else { return nil }
        bytes -= first.size
        return first.item
    }
}
