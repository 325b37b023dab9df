import Synchronization

/// The bounded queue in front of one node: one lane per input edge.
/// Producers suspend while their lane is full — that is the backpressure — and
/// the consumer suspends while the inbox is empty. All logic is in
/// ``InboxStateMachine``; this type only holds the lock and resumes tasks.
final class Inbox: Sendable {
    typealias Waiter = UnsafeContinuation<Void, Never>
    private let state: Mutex<InboxStateMachine<Waiter>>
    let capacity: Int

    init(lanes: Int, capacity: Int, producers: Int = 1) {
        self.capacity = capacity
        self.state = Mutex(InboxStateMachine(lanes: lanes, capacity: capacity, producers: producers))
    }

    /// Stores `packet` in `lane`, suspending while the lane is full. Returns
    /// false when the consumer is gone and the packet was dropped.
    @discardableResult
    func push(_ packet: Packet, lane: Int) async -> Bool {
        var blockedSince: UInt64 = 0
        while true {
            switch state.withLock({ $0.push(packet, lane: lane) }) {
            case .stored(let consumer):
                recordBlocked(since: blockedSince, lane: lane)
                consumer?.resume()
                return true
            case .discarded:
                return false
            case .full:
                await waitForRoom(lane: lane, blockedSince: &blockedSince)
            }
        }
    }

    /// Stores `packets` in `lane` in order, suspending while the lane is full.
    /// Returns false when the consumer is gone and the rest were dropped.
    @discardableResult
    func push(contentsOf packets: [Packet], lane: Int) async -> Bool {
        var next = 0
        var blockedSince: UInt64 = 0
        while true {
            switch state.withLock({ $0.push(contentsOf: packets, from: &next, lane: lane) }) {
            case .stored(let consumer):
                recordBlocked(since: blockedSince, lane: lane)
                consumer?.resume()
                return true
            case .discarded:
                return false
            case .full(let consumer):
                consumer?.resume()
                await waitForRoom(lane: lane, blockedSince: &blockedSince)
            }
        }
    }

    /// Suspends a producer until its lane has room, noting when it first blocked.
    private func waitForRoom(lane: Int, blockedSince: inout UInt64) async {
        if blockedSince == 0 { blockedSince = MonotonicClock.now() }
        await withUnsafeContinuation { (waiter: Waiter) in
            state.withLock { $0.waitForRoom(lane: lane, waiter) }?.resume()
        }
    }

    /// Returns when the consumer next takes a packet from `lane`: true; or
    /// at once, false, when nothing is queued there to take.
    func waitForTake(lane: Int) async -> Bool {
        var waited = true
        await withUnsafeContinuation { (waiter: Waiter) in
            if let back = state.withLock({ $0.waitForTake(lane: lane, waiter) }) {
                waited = false
                back.resume()
            }
        }
        return waited
    }

    /// Adds the time a producer spent blocked (since `start`, 0 for never) to its lane.
    private func recordBlocked(since start: UInt64, lane: Int) {
        guard start != 0 else { return }
        let blocked = MonotonicClock.now() &- start
        state.withLock { $0.recordBlocked(lane: lane, nanoseconds: blocked) }
    }

    /// Moves the next ready packets into `batch` (at most `limit`), waiting
    /// while none are ready. Returns false at end of stream.
    func pop(into batch: inout [Packet], limit: Int) async -> Bool {
        var wake: [Waiter] = []
        while true {
            let action = state.withLock { $0.pop(into: &batch, limit: limit, wake: &wake) }
            switch action {
            case .batch:
                for producer in wake { producer.resume() }
                return true
            case .endOfStream:
                return false
            case .wait:
                await withUnsafeContinuation { (waiter: Waiter) in
                    state.withLock { $0.waitForPackets(waiter) }?.resume()
                }
            }
        }
    }

    /// One more producer sends into `lane`.
    func attach(lane: Int) {
        state.withLock { $0.attach(lane: lane) }
    }

    /// A producer of `lane` has finished.
    func finish(lane: Int) {
        state.withLock { $0.finish(lane: lane) }?.resume()
    }

    /// The consumer stopped for good: drop what is queued and what comes.
    func discardAll() {
        var wake: [Waiter] = []
        state.withLock { $0.discardAll(wake: &wake) }
        for waiter in wake { waiter.resume() }
    }

    /// Ends everything now (hard stop): producers and consumer are released.
    func terminate() {
        var wake: [Waiter] = []
        state.withLock { $0.terminate(wake: &wake) }
        for waiter in wake { waiter.resume() }
    }

    /// Whether the consumer has gone for good (failed, or stopped reading):
    /// whatever is pushed is dropped.
    var isDiscarding: Bool { state.withLock { $0.isDiscarding } }

    /// Counters of each lane, in lane order.
    var laneStats: [InboxStateMachine<Waiter>.LaneStats] { state.withLock { $0.lanes } }
}
