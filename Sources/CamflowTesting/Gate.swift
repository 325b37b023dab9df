import Camflow

/// A one-shot gate for tests: a node waits on it until the test opens it,
/// to hold a sink and watch backpressure build.
public struct Gate: Sendable {
    private let signal = OneShotSignal()

    public init() {}

    /// Lets every waiter through, now and later.
    public func open() { signal.fire() }

    /// Returns once the gate is open.
    public func wait() async { await signal.wait() }
}

/// A condition a test waited for did not come true in time.
public struct WaitTimedOut: Error, CustomStringConvertible {
    public let what: String
    public var description: String { "timed out waiting until \(what)" }
}

/// Polls `condition` until it holds; throws ``WaitTimedOut`` after `timeout`.
/// For tests: a bounded wait on a condition, never a fixed sleep.
public func waitUntil(_ what: String, timeout: Duration = .seconds(30), _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        guard ContinuousClock.now < deadline else { throw WaitTimedOut(what: what) }
        try await Task.sleep(for: .milliseconds(2))
    }
}
