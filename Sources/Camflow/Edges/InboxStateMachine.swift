internal import DequeModule

/// The logic of a node's inbox: every edge into a node is a *lane* of one
/// FIFO, bounded per lane. A pure value: its mutating methods say what to do
/// next (wake the consumer, wake producers, wait) and ``Inbox`` carries it out
/// under a lock. It is tested without tasks.
///
/// One FIFO for all lanes keeps arrival order across inputs and gives the
/// consumer a single place to wait; per-lane counts keep each edge bounded
/// on its own, so one busy input cannot starve another of room.
struct InboxStateMachine<Waiter> {
    struct Entry {
        var lane: Int
        var packet: Packet
    }

    /// Per-edge counters, read by status and metrics.
    struct LaneStats: Sendable, Equatable {
        var depth = 0
        var maxDepth = 0
        var packetsIn: UInt64 = 0
        var bytesIn: UInt64 = 0
        var packetsOut: UInt64 = 0
        var discarded: UInt64 = 0
        var blockedNanoseconds: UInt64 = 0
        var finished = false
    }

    enum PushAction {
        /// Stored; wake this consumer if one was waiting.
        case stored(wakeConsumer: Waiter?)
        /// The lane is full: the producer waits until the consumer takes.
        case full
        /// The consumer is gone (failed or the pipeline was terminated).
        case discarded
    }

    enum PushManyAction {
        /// All stored; wake this consumer if one was waiting.
        case stored(wakeConsumer: Waiter?)
        /// Some stored (wake this consumer, so it drains), the rest wait for room.
        case full(wakeConsumer: Waiter?)
        /// The consumer is gone: the rest was counted as discarded.
        case discarded
    }

    enum PopAction {
        /// Packets were moved into the batch; wake these producers.
        case batch
        /// Nothing queued: the consumer waits.
        case wait
        /// Every lane finished and nothing is left: end of stream.
        case endOfStream
    }

    let capacity: Int
    private(set) var lanes: [LaneStats]
    private var queue: Deque<Entry>
    private var waitingProducers: [Waiter?]
    /// Outputs sending into each lane: more than one while a reload hands a
    /// producer over from its old instance to its new one.
    private var producers: [Int]
    private var waitingConsumer: Waiter?
    /// The consumer stopped reading: packets are counted and dropped.
    private(set) var isDiscarding = false

    /// - Parameter producers: outputs already sending into each lane; a
    ///   reload makes inboxes with none and attaches them.
    init(lanes: Int, capacity: Int, producers: Int = 1) {
        precondition(capacity > 0, "edge capacity must be positive")
        self.capacity = capacity
        self.lanes = Array(repeating: LaneStats(), count: lanes)
        self.producers = Array(repeating: producers, count: lanes)
        // Room for a few packets per lane at first; the deque grows to what is used.
        self.queue = Deque(minimumCapacity: min(capacity, 64) * max(lanes, 1))
        self.waitingProducers = Array(repeating: nil, count: lanes)
    }

    mutating func push(_ packet: Packet, lane: Int) -> PushAction {
        if isDiscarding {
            lanes[lane].discarded += 1
            return .discarded
        }
        guard lanes[lane].depth < capacity else { return .full }
        queue.append(Entry(lane: lane, packet: packet))
        lanes[lane].depth += 1
        lanes[lane].maxDepth = max(lanes[lane].maxDepth, lanes[lane].depth)
        lanes[lane].packetsIn += 1
        lanes[lane].bytesIn += UInt64(packet.payload.readableBytes)
        let consumer = waitingConsumer
        waitingConsumer = nil
        return .stored(wakeConsumer: consumer)
    }

    /// Stores `packets[next...]` in `lane` while it has room, advancing
    /// `next`: a run of packets costs one lock and at most one wake-up.
    mutating func push(contentsOf packets: [Packet], from next: inout Int, lane: Int) -> PushManyAction {
        if isDiscarding {
            lanes[lane].discarded += UInt64(packets.count - next)
            next = packets.count
            return .discarded
        }
        let first = next
        while next < packets.count, lanes[lane].depth < capacity {
            let packet = packets[next]
            queue.append(Entry(lane: lane, packet: packet))
            lanes[lane].depth += 1
            lanes[lane].packetsIn += 1
            lanes[lane].bytesIn += UInt64(packet.payload.readableBytes)
            next += 1
        }
        lanes[lane].maxDepth = max(lanes[lane].maxDepth, lanes[lane].depth)
        var consumer: Waiter?
        if next > first {
            consumer = waitingConsumer
            waitingConsumer = nil
        }
        return next == packets.count ? .stored(wakeConsumer: consumer) : .full(wakeConsumer: consumer)
    }

    /// A producer that found its lane full registers here. Returns the waiter
    /// back when it should not wait after all (room appeared, or discarding).
    mutating func waitForRoom(lane: Int, _ waiter: Waiter) -> Waiter? {
        if isDiscarding || lanes[lane].depth < capacity { return waiter }
        // One producer pushes into a lane at a time (a reload's new instance
        // starts after the old one ended): a second waiter would be lost.
        precondition(waitingProducers[lane] == nil, "two producers wait on one lane of an inbox")
        waitingProducers[lane] = waiter
        return nil
    }

    /// A producer that wants to know when the consumer next takes from
    /// `lane` registers here. Returns the waiter back when there is nothing
    /// queued in the lane to take (or the consumer is gone): no wait.
    mutating func waitForTake(lane: Int, _ waiter: Waiter) -> Waiter? {
        if isDiscarding || lanes[lane].depth == 0 { return waiter }
        precondition(waitingProducers[lane] == nil, "two producers wait on one lane of an inbox")
        waitingProducers[lane] = waiter
        return nil
    }

    mutating func recordBlocked(lane: Int, nanoseconds: UInt64) {
        lanes[lane].blockedNanoseconds += nanoseconds
    }

    /// Moves up to `limit` packets into `batch`, appending the producers to
    /// wake to `wake`.
    mutating func pop(into batch: inout [Packet], limit: Int, wake: inout [Waiter]) -> PopAction {
        if queue.isEmpty {
            return lanes.allSatisfy(\.finished) ? .endOfStream : .wait
        }
        let count = min(limit, queue.count)
        for _ in 0..<count {
            let entry = queue.removeFirst()
            lanes[entry.lane].depth -= 1
            lanes[entry.lane].packetsOut += 1
            batch.append(entry.packet)
            if let producer = waitingProducers[entry.lane] {
                waitingProducers[entry.lane] = nil
                wake.append(producer)
            }
        }
        return .batch
    }

    /// The consumer found nothing and registers here. Returns the waiter back
    /// when it should not wait after all.
    mutating func waitForPackets(_ waiter: Waiter) -> Waiter? {
        if !queue.isEmpty || lanes.allSatisfy(\.finished) { return waiter }
        precondition(waitingConsumer == nil, "two consumers wait on one inbox")
        waitingConsumer = waiter
        return nil
    }

    /// One more output sends into `lane` (a reload's new instance of its producer).
    mutating func attach(lane: Int) {
        producers[lane] += 1
        lanes[lane].finished = false
    }

    /// A producer of `lane` will send nothing more; the lane ends with its last one.
    mutating func finish(lane: Int) -> Waiter? {
        producers[lane] = max(0, producers[lane] - 1)
        guard producers[lane] == 0 else { return nil }
        lanes[lane].finished = true
        guard lanes.allSatisfy(\.finished) else { return nil }
        let consumer = waitingConsumer
        waitingConsumer = nil
        return consumer
    }

    /// The consumer is gone: drop what is queued (counted per lane) and
    /// accept no more, so producers never block on a dead node.
    mutating func discardAll(wake: inout [Waiter]) {
        isDiscarding = true
        while let entry = queue.popFirst() {
            lanes[entry.lane].depth -= 1
            lanes[entry.lane].discarded += 1
        }
        for lane in waitingProducers.indices {
            if let producer = waitingProducers[lane] { wake.append(producer) }
            waitingProducers[lane] = nil
        }
        if let consumer = waitingConsumer { wake.append(consumer) }
        waitingConsumer = nil
    }

    /// Ends the stream for the consumer at once, whatever is queued.
    mutating func terminate(wake: inout [Waiter]) {
        discardAll(wake: &wake)
        for lane in lanes.indices { lanes[lane].finished = true }
    }
}
