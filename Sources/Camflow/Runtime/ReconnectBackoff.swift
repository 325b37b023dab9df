/// Exponential backoff with jitter between a source's reconnects (the
/// cameras': `instar-camera`, `rtsp-camera`). A value, tested without tasks.
public struct ReconnectBackoff: Sendable {
    public var minimum: Duration
    public var maximum: Duration
    /// Attempts allowed in a row without a successful session; nil: unlimited.
    public var maxAttempts: Int?
    public private(set) var failures = 0

    public init(minimum: Duration, maximum: Duration, maxAttempts: Int?) {
        self.minimum = minimum
        self.maximum = maximum
        self.maxAttempts = maxAttempts
    }

    /// A session delivered media: the next failure starts from the minimum again.
    public mutating func reset() { failures = 0 }

    /// The wait before the next attempt, or nil when attempts are used up.
    /// `random` in 0...1 spreads reconnects of many cameras (half to full delay).
    public mutating func next(random: Double) -> Duration? {
        failures += 1
        if let maxAttempts, failures > maxAttempts { return nil }
        var delay = minimum
        for _ in 1..<failures {
            delay = delay * 2
            if delay >= maximum { break }
        }
        delay = min(delay, maximum)
        return delay * (0.5 + 0.5 * min(max(random, 0), 1))
    }
}
