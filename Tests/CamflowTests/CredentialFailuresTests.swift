import Camflow
import CamflowTesting
import Testing

/// Wrong credentials per peer, driven with explicit times.
@Suite struct CredentialFailuresTests {
    static let second: UInt64 = 1_000_000_000

    @Test func tenWrongPasswords_lockAPeerOut_untilItsWindowEnds() {
        var failures = CredentialFailures(maxFailures: 10, windowNanoseconds: 60 * Self.second)
        var outcomes: [CredentialFailures.Outcome] = []
        for i in 0..<10 {
            #expect(!failures.isLockedOut("10.0.0.1", now: UInt64(i) * Self.second))
            outcomes.append(failures.note("10.0.0.1", now: UInt64(i) * Self.second))
        }
        #expect(outcomes.first == .first && outcomes.last == .lockedOut && outcomes.dropFirst().dropLast().allSatisfy { $0 == .counted })
        #expect(failures.isLockedOut("10.0.0.1", now: 59 * Self.second))
        #expect(!failures.isLockedOut("10.0.0.2", now: 59 * Self.second))
        #expect(!failures.isLockedOut("10.0.0.1", now: 60 * Self.second))
        #expect(failures.note("10.0.0.1", now: 61 * Self.second) == .first)
    }

    /// A full table must not mean unlimited guesses from peers it cannot list
    /// (4,097 addresses kept the alarm server's guessing open).
    @Test func peersBeyondAFullTable_shareOneCount() {
        var failures = CredentialFailures(maxFailures: 3, windowNanoseconds: 60 * Self.second, maxGroups: 4)
        for peer in 0..<4 { _ = failures.note("p\(peer)", now: 0) }
        #expect(failures.note("new1", now: 1) == .first)
        #expect(!failures.isLockedOut("new2", now: 1))
        _ = failures.note("new2", now: 1)
        #expect(failures.note("new3", now: 1) == .lockedOut)
        #expect(failures.isLockedOut("new4", now: 2))
        #expect(!failures.isLockedOut("p0", now: 2), "a listed peer keeps its own count")
        // The window ends: the table has room again and the shared count is gone.
        #expect(!failures.isLockedOut("new4", now: 61 * Self.second))
        #expect(failures.note("new4", now: 61 * Self.second) == .first)
    }

    @Test func theLimiter_readsItsWindowOnThePipelinesClock() async {
        let clock = ManualClock()
        let limiter = CredentialFailureLimiter(CredentialFailures(maxFailures: 3, windowNanoseconds: 60 * Self.second), clock: clock)
        for _ in 0..<3 { _ = limiter.note("10.0.0.1") }
        #expect(limiter.isLockedOut("10.0.0.1"))
        await clock.advance(by: .seconds(59))
        #expect(limiter.isLockedOut("10.0.0.1"), "a minute's window, not less")
        await clock.advance(by: .seconds(1))
        #expect(!limiter.isLockedOut("10.0.0.1"))
    }
}
