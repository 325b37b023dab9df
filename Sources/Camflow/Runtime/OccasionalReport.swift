/// When a problem that repeats is told again (logged, sent as an event):
/// the first at once, then at most once per `interval`, with the count of
/// those in between. A peer sending garbage a million times a second then
/// costs a line every few seconds, where a rule of "every thousandth" still
/// let it write a thousand lines a second. A value, tested without tasks;
/// the caller passes the time (its pipeline clock's).
public struct OccasionalReport: Sendable {
    /// What to tell: how many so far, and how many since the last one told
    /// (this one included).
    public struct Told: Sendable, Equatable {
        public var total: UInt64
        public var sinceLastTold: UInt64

        public init(total: UInt64, sinceLastTold: UInt64) {
            self.total = total
            self.sinceLastTold = sinceLastTold
        }
    }

    public let interval: Duration
    private var lastTold: ContinuousClock.Instant?
    private var total: UInt64 = 0
    private var untold: UInt64 = 0

    public init(interval: Duration = .seconds(10)) {
        self.interval = interval
    }

    /// What came since the last one told, to be told at an end (a stop, a
    /// disconnection), so a burst shorter than the interval is not left at
    /// its first line; nil when nothing is owed.
    public mutating func owed() -> Told? {
        guard untold > 0 else { return nil }
        defer { untold = 0 }
        return Told(total: total, sinceLastTold: untold)
    }

    /// Counts one occurrence at `now`; non-nil when it is to be told.
    public mutating func count(now: ContinuousClock.Instant) -> Told? {
        total &+= 1
        untold &+= 1
        if let lastTold, now - lastTold < interval { return nil }
        lastTold = now
        defer { untold = 0 }
        return Told(total: total, sinceLastTold: untold)
    }
}
