/// The time a pipeline and its nodes read: when something is due, and how
/// long to wait for it. The engine passes one to every node
/// (``NodeContext/clock``); product code reads time only through it, so a
/// test can run a pipeline on a ``ManualClock`` and move time by hand
/// (restart backoff, idle detection, stats intervals) instead of waiting.
///
/// Instants are `ContinuousClock.Instant`s, so durations between them and
/// deadlines mix with the rest of Swift's time APIs.
public protocol PipelineClock: Sendable {
    /// Monotonic now: never goes back, counts while the machine sleeps.
    var now: ContinuousClock.Instant { get }
    /// Wall-clock now, in seconds since 1970: for names and times people
    /// read (file names, retention by age), never for measuring waits.
    var wallNow: Double { get }
    /// Returns at `deadline` or later; throws `CancellationError` if the
    /// task is cancelled first.
    func sleep(until deadline: ContinuousClock.Instant) async throws
}

extension PipelineClock {
    /// Returns after `duration`; throws `CancellationError` if the task is
    /// cancelled first.
    public func sleep(for duration: Duration) async throws {
        try await sleep(until: now.advanced(by: duration))
    }

    /// The time since `instant`.
    public func elapsed(since instant: ContinuousClock.Instant) -> Duration {
        instant.duration(to: now)
    }
}

/// The machine's clocks: `ContinuousClock` for waits, `CLOCK_REALTIME` for
/// the wall.
public struct SystemClock: PipelineClock {
    public init() {}

    public var now: ContinuousClock.Instant { .now }

    public var wallNow: Double { MonotonicClock.wallNow() }

    public func sleep(until deadline: ContinuousClock.Instant) async throws {
        try await Task.sleep(until: deadline, clock: .continuous)
    }
}
