@testable import InstarPlugin
import Testing

@Suite struct RepeatLimiterTests {
    @Test func repeatsAreCounted_notRepeated() {
        var limiter = RepeatLimiter(window: .seconds(60), maxDistinct: 3)
        let start = ContinuousClock.now
        #expect(limiter.admit("error: a", now: start) == ["error: a"])
        for _ in 0..<99 { #expect(limiter.admit("error: a", now: start).isEmpty) }
        #expect(limiter.admit("error: b", now: start) == ["error: a (repeated 99 more times)", "error: b"])
        #expect(limiter.admit("error: c", now: start) == ["error: c"])
        #expect(limiter.admit("error: d", now: start).isEmpty, "more than 3 different messages in a window")
        #expect(limiter.admit("error: e", now: start).isEmpty)
        // A new window says what was held back, then lets messages through again.
        #expect(limiter.admit("error: f", now: start + .seconds(61)) == ["2 more different messages not shown", "error: f"])
    }
}
