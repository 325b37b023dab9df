import Camflow
import Testing

@Suite struct OccasionalReportTests {
    @Test func theFirstIsToldAtOnce_thenAtMostOncePerInterval_withTheCountInBetween() {
        var report = OccasionalReport(interval: .seconds(10))
        let start = ContinuousClock.now
        #expect(report.count(now: start) == .init(total: 1, sinceLastTold: 1))
        // A flood within the interval: nothing told, everything counted.
        for step in 1...100_000 {
            #expect(report.count(now: start + .microseconds(step * 50)) == nil)
        }
        #expect(report.count(now: start + .seconds(10)) == .init(total: 100_002, sinceLastTold: 100_001))
        #expect(report.count(now: start + .seconds(11)) == nil)
        // After a quiet spell the next one is told at once.
        #expect(report.count(now: start + .seconds(60)) == .init(total: 100_004, sinceLastTold: 2))
    }

    @Test func whatCameAfterTheLastLine_isOwedAtTheEnd() {
        var report = OccasionalReport(interval: .seconds(10))
        let start = ContinuousClock.now
        #expect(report.owed() == nil)
        _ = report.count(now: start)
        #expect(report.owed() == nil, "the first was told")
        for step in 1...5 { _ = report.count(now: start + .milliseconds(step)) }
        #expect(report.owed() == .init(total: 6, sinceLastTold: 5))
        #expect(report.owed() == nil)
    }
}
