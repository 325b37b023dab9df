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

/// Checks `condition` until it holds; throws ``WaitTimedOut`` after `timeout`.
/// For tests of what another process does (a file written, an HTTP answer):
/// a bounded wait on a condition, never a fixed sleep. Checks come 1 ms
/// apart at first, then further apart (20 ms at most), so that a slow
/// condition costs little while the suite runs in parallel.
public func waitUntil(_ what: String, timeout: Duration = .seconds(30),
                      _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    var pause = Duration.milliseconds(1)
    while try await !condition() {
        guard ContinuousClock.now < deadline else { throw WaitTimedOut(what: what) }
        try await Task.sleep(for: pause)
        pause = min(pause * 2, .milliseconds(20))
    }
}
