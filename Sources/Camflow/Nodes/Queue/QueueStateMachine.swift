/// The handoff between a queue's intake and its drain: a ``QueueBuffer``
/// plus who waits for what. A pure value, like ``InboxStateMachine``: its
/// methods say whom to wake, ``QueueStorage`` resumes them outside its lock.
struct QueueStateMachine<Waiter> {
    enum OfferAction {
        /// Stored (after dropping `dropped` older packets); wake this taker.
        case accepted(dropped: Int, wakeTaker: Waiter?)
        /// The policy dropped the packet itself.
        case dropped
        /// Full under `block`: the offerer waits for room.
        case full
    }

    enum TakeAction {
        /// The oldest packet; wake this offerer, it may have room now.
        case packet(Packet, wakeOfferer: Waiter?)
        /// Input ended and nothing is left.
        case end
        /// Empty: the taker waits.
        case wait
    }

    private(set) var buffer: QueueBuffer
    private(set) var inputFinished = false
    private var waitingTaker: Waiter?
    private var waitingOfferer: Waiter?

    init(_ buffer: QueueBuffer) {
        self.buffer = buffer
    }

    mutating func offer(_ packet: Packet) -> OfferAction {
        switch buffer.offer(packet) {
        case .accepted(let dropped):
            defer { waitingTaker = nil }
            return .accepted(dropped: dropped, wakeTaker: waitingTaker)
        case .dropped: return .dropped
        case .full: return .full
        }
    }

    /// Parks an offerer that found the queue full; returns it when it must
    /// not wait (the queue emptied meanwhile).
    mutating func waitForRoom(_ offerer: Waiter) -> Waiter? {
        if buffer.isEmpty { return offerer }
        waitingOfferer = offerer
        return nil
    }

    mutating func take() -> TakeAction {
        if let packet = buffer.take() {
            defer { waitingOfferer = nil }
            return .packet(packet, wakeOfferer: waitingOfferer)
        }
        return inputFinished ? .end : .wait
    }

    /// Parks a taker that found the queue empty; returns it when it must
    /// not wait (a packet came, or the input ended, meanwhile).
    mutating func waitForPackets(_ taker: Waiter) -> Waiter? {
        if !buffer.isEmpty || inputFinished { return taker }
        waitingTaker = taker
        return nil
    }

    /// The input ended; returns a waiting taker to wake.
    mutating func finishInput() -> Waiter? {
        inputFinished = true
        defer { waitingTaker = nil }
        return waitingTaker
    }
}
