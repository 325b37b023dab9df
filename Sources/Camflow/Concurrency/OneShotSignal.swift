import Synchronization

/// A signal that fires once and stays fired, which any number of tasks can
/// wait for: "the pipeline is stopping", "the server is listening", "the
/// test opened the gate". Waiting is cancellation-aware: a cancelled waiter
/// returns at once. Continuations are resumed outside the lock.
public final class OneShotSignal: Sendable {
    private let state = Mutex(OneShotState<CheckedContinuation<Void, Never>>())

    public init() {}

    /// Whether ``fire()`` was called.
    public var isFired: Bool { state.withLock { $0.isFired } }

    /// Fires the signal and releases every waiter; later calls do nothing.
    public func fire() {
        for waiter in state.withLock({ $0.fire() }) { waiter.resume() }
    }

    /// Returns when the signal fires or the task is cancelled.
    public func wait() async {
        let id = state.withLock { $0.reserveID() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                if !state.withLock({ $0.park(continuation, id: id, cancelled: Task.isCancelled) }) {
                    continuation.resume()
                }
            }
        } onCancel: {
            state.withLock { $0.cancel(id: id) }?.resume()
        }
    }
}

/// The logic of ``OneShotSignal``, as a value: each method says which
/// waiters to resume, and the caller resumes them after the lock.
struct OneShotState<Waiter> {
    private(set) var isFired = false
    private var nextID = 0
    private var waiters: [Int: Waiter] = [:]
    /// Ids cancelled before they parked: their waiters must not stay.
    private var cancelledIDs: Set<Int> = []

    /// An id for a waiter about to park.
    mutating func reserveID() -> Int {
        nextID += 1
        return nextID
    }

    /// Parks `waiter`; false when it must be resumed at once (fired or cancelled).
    mutating func park(_ waiter: Waiter, id: Int, cancelled: Bool) -> Bool {
        let cancelledEarlier = cancelledIDs.remove(id) != nil
        if isFired || cancelled || cancelledEarlier { return false }
        waiters[id] = waiter
        return true
    }

    /// The waiter of `id`, to resume; nil when it has not parked yet (it
    /// will not) or is gone.
    mutating func cancel(id: Int) -> Waiter? {
        if let waiter = waiters.removeValue(forKey: id) { return waiter }
        if !isFired { cancelledIDs.insert(id) }
        return nil
    }

    /// Fires; returns the waiters to resume (none the second time).
    mutating func fire() -> [Waiter] {
        guard !isFired else { return [] }
        isFired = true
        cancelledIDs = []
        defer { waiters = [:] }
        return Array(waiters.values)
    }
}
