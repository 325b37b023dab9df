import Camflow
import Logging
import Synchronization

/// Logs a WebSocket refused for its origin once per origin, saying how to
/// allow it. A hostile page can send any number of origins, so only the
/// first ``limit`` are remembered and named; past that, one line a minute
/// counts the refusals left unnamed.
final class RefusedOrigins: Sendable {
    private struct State {
        var named: Set<String> = []
        var unnamed = 0
        var lastSummary: ContinuousClock.Instant?
    }

    let limit: Int
    let summaryInterval: Duration
    private let clock: any PipelineClock
    private let state = Mutex(State())

    init(limit: Int = 64, summaryInterval: Duration = .seconds(60), clock: any PipelineClock = SystemClock()) {
        self.limit = limit
        self.summaryInterval = summaryInterval
        self.clock = clock
    }

    /// The line to log for a refusal from `origin`, or nil when it was said already.
    /// - Parameter now: when; the clock's now when nil.
    func line(for origin: String, now: ContinuousClock.Instant? = nil) -> String? {
        let now = now ?? clock.now
        let trimmed = origin.hasSuffix("/") ? String(origin.dropLast()) : origin
        let key = String(trimmed.prefix(256))
        enum Outcome { case new, known, summary(Int), quiet }
        let outcome: Outcome = state.withLock { state in
            if state.named.contains(key) { return .known }
            if state.named.count < limit {
                state.named.insert(key)
                return .new
            }
            state.unnamed += 1
            if let last = state.lastSummary, now - last < summaryInterval { return .quiet }
            state.lastSummary = now
            defer { state.unnamed = 0 }
            return .summary(state.unnamed)
        }
        switch outcome {
        case .new:
            let shown = UntrustedText.printable(trimmed, limit: 128)
            // Only an origin that reads back as itself can be listed as it is printed.
            let listable = shown == trimmed && !trimmed.contains("\"") && trimmed.contains("://")
            return "refused a WebSocket from a page of origin '\(shown)': "
                + (listable ? "to allow it, add \"\(trimmed)\" to the web node's 'allowed-origins'"
                            : "not an origin 'allowed-origins' can list")
                + " (said once per origin)"
        case .summary(let count):
            return "refused WebSockets from \(count) more origin(s), not named: the first \(limit) refused origins were logged"
        case .known, .quiet:
            return nil
        }
    }

    func log(_ origin: String, to logger: Logger) {
        if let line = line(for: origin) { logger.notice("\(line)") }
    }
}
