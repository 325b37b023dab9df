/// Decides which of a peer's messages reach the log and the events: a
/// camera that repeats `error: ...` ten times a second must not drown the
/// log or the pipeline. The first of a run of identical messages passes,
/// repeats are counted and summed up when the message changes or the
/// window ends, and at most `maxDistinct` different messages pass per
/// window. A value, tested without tasks.
struct RepeatLimiter: Sendable {
    var window: Duration = .seconds(60)
    var maxDistinct = 5
    private var last: String?
    private var repeats = 0
    private var distinct = 0
    private var suppressed = 0
    private var windowStart: ContinuousClock.Instant?

    init(window: Duration = .seconds(60), maxDistinct: Int = 5) {
        self.window = window
        self.maxDistinct = maxDistinct
    }

    /// The lines to report now for `message` arriving at `now` (often none).
    mutating func admit(_ message: String, now: ContinuousClock.Instant) -> [String] {
        var out: [String] = []
        if let start = windowStart, now - start >= window {
            out += summary()
            windowStart = now
            distinct = 0
            last = nil
        }
        windowStart = windowStart ?? now
        if message == last {
            repeats += 1
            return out
        }
        if repeats > 0, let last { out.append("\(last) (repeated \(repeats) more times)") }
        repeats = 0
        last = message
        distinct += 1
        if distinct <= maxDistinct {
            out.append(message)
        } else {
            suppressed += 1
        }
        return out
    }

    /// What is owed at the end of a window or a session: repeats and suppressed messages.
    mutating func summary() -> [String] {
        var out: [String] = []
        if repeats > 0, let last { out.append("\(last) (repeated \(repeats) more times)") }
        if suppressed > 0 { out.append("\(suppressed) more different messages not shown") }
        repeats = 0
        suppressed = 0
        return out
    }
}
