public import Camflow
import Synchronization

/// A ``PipelineClock`` that moves only when the test says so: a node waiting
/// out a backoff or an idle timeout on it returns when the test calls
/// ``advance(by:)`` past its deadline, in microseconds of real time.
///
/// ```swift
/// let clock = ManualClock()
/// // start a pipeline with `clock: clock`, then:
/// try await clock.waitForSleepers(1)   // the node is waiting
/// await clock.advance(by: .seconds(30))  // and now its wait is over
/// ```
public final class ManualClock: PipelineClock {
    private struct Sleeper {
        let deadline: ContinuousClock.Instant
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var offset = Duration.zero
        var nextID = 0
        var sleepers: [Int: Sleeper] = [:]
        /// Tests waiting for a number of sleepers, resumed when it is reached.
        var watchers: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let origin: ContinuousClock.Instant
    private let wallOrigin: Double
    private let state = Mutex(State())

    /// A clock that starts at the machine's time now and then stands still.
    public init() {
        origin = .now
        wallOrigin = MonotonicClock.wallNow()
    }

    public var now: ContinuousClock.Instant { origin.advanced(by: state.withLock { $0.offset }) }

    public var wallNow: Double {
        let offset = state.withLock { $0.offset }
        return wallOrigin + Double(offset.components.seconds) + Double(offset.components.attoseconds) / 1e18
    }

    /// How many tasks are sleeping on this clock now.
    public var sleepers: Int { state.withLock { $0.sleepers.count } }

    public func sleep(until deadline: ContinuousClock.Instant) async throws {
        let id = state.withLock { state -> Int in
            defer { state.nextID += 1 }
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let (resumeNow, watchers) = state.withLock { state -> (Bool, [CheckedContinuation<Void, Never>]) in
                    if origin.advanced(by: state.offset) >= deadline { return (true, []) }
                    if Task.isCancelled { return (true, []) }
                    state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    return (false, Self.takeSatisfied(&state))
                }
                for watcher in watchers { watcher.resume() }
                if resumeNow {
                    if Task.isCancelled { continuation.resume(throwing: CancellationError()) } else { continuation.resume() }
                }
            }
        } onCancel: {
            let sleeper = state.withLock { $0.sleepers.removeValue(forKey: id) }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves time forward by `duration`; every sleeper whose deadline it
    /// reaches returns. Yields a little so that they run before this returns.
    public func advance(by duration: Duration) async {
        let due = state.withLock { state -> [Sleeper] in
            state.offset += duration
            let now = origin.advanced(by: state.offset)
            let due = state.sleepers.filter { $0.value.deadline <= now }
            for id in due.keys { state.sleepers[id] = nil }
            return due.values.sorted { $0.deadline < $1.deadline }
        }
        for sleeper in due { sleeper.continuation.resume() }
        for _ in 0..<8 { await Task.yield() }
    }

    /// Returns once at least `count` tasks sleep on this clock (a node has
    /// reached its wait); throws ``WaitTimedOut`` after `timeout` of real time.
    public func waitForSleepers(_ count: Int, timeout: Duration = .seconds(30)) async throws {
        if sleepers >= count { return }
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let now = self.state.withLock { state -> Bool in
                        if state.sleepers.count >= count { return true }
                        state.watchers.append((count, continuation))
                        return false
                    }
                    if now { continuation.resume() }
                }
                return true
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = try await group.next() ?? false
            group.cancelAll()
            if !first {
                // The watcher never came true: resume it so the group can end.
                let stale = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                    defer { state.watchers = [] }
                    return state.watchers.map(\.continuation)
                }
                for continuation in stale { continuation.resume() }
                throw WaitTimedOut(what: "\(count) tasks sleep on the manual clock (\(sleepers) do)")
            }
        }
    }

    private static func takeSatisfied(_ state: inout State) -> [CheckedContinuation<Void, Never>] {
        var satisfied: [CheckedContinuation<Void, Never>] = []
        state.watchers.removeAll { watcher in
            guard state.sleepers.count >= watcher.count else { return false }
            satisfied.append(watcher.continuation)
            return true
        }
        return satisfied
    }
}
