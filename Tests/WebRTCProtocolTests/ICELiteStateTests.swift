import NIOCore
import Testing
@testable import WebRTCProtocol

/// The lite agent's selection and consent, with time handed in.
@Suite struct ICELiteStateTests {
    static let check = STUNRequestCheck(localUfrag: "camFLOW1", localPassword: "abcdefghijklmnopqrstuvwx", remoteUfrag: "Xq3k")

    static func checked(useCandidate: Bool) throws -> STUNCheckedRequest {
        try check.check(datagram: STUNCheckTests.request(useCandidate: useCandidate))
    }

    @Test func firstChecks_thenNomination_thenConsentEvery2s() throws {
        var state = ICELiteState<String>(answeredAt: .seconds(100))
        #expect(state.selected == nil && state.deadline == .seconds(115))
        #expect(try state.receive(Self.checked(useCandidate: false), from: "a", at: .seconds(101)) == .selected("a"))
        #expect(!state.nominated && state.lastConsent == .seconds(101))
        // Before nomination the latest address carries media.
        #expect(try state.receive(Self.checked(useCandidate: false), from: "b", at: .seconds(101.1)) == .selected("b"))
        #expect(try state.receive(Self.checked(useCandidate: true), from: "a", at: .seconds(101.2)) == .selected("a"))
        #expect(state.nominated && state.selected == "a")
        // Nominated: an unnominated check from elsewhere neither moves media nor refreshes consent.
        #expect(try state.receive(Self.checked(useCandidate: false), from: "b", at: .seconds(110)) == .none)
        #expect(state.selected == "a" && state.lastConsent == .seconds(101.2))
        // Chromium's steady 2.66 s checks keep consent for as long as they come.
        var now = Duration.seconds(101.2)
        for _ in 0..<100 {
            now += .milliseconds(2660)
            #expect(try state.receive(Self.checked(useCandidate: true), from: "a", at: now) == .none)
        }
        #expect(!state.isExpired(at: now + .seconds(29.999)))
        #expect(state.expiry(at: now + .seconds(30)) == .consentExpired)
        // A newer nominated address takes over.
        #expect(try state.receive(Self.checked(useCandidate: true), from: "c", at: now + .seconds(1)) == .selected("c"))
        #expect(state.deadline == now + .seconds(31))
    }

    @Test func silence_expiresTheSession() throws {
        let state = ICELiteState<Int>(answeredAt: .zero)
        #expect(state.expiry(at: .seconds(14.9)) == nil && state.expiry(at: .seconds(15)) == .noCheck)

        var consenting = ICELiteState<Int>(answeredAt: .zero)
        consenting.receive(try Self.checked(useCandidate: true), from: 1, at: .seconds(1))
        #expect(consenting.expiry(at: .seconds(30.9)) == nil && consenting.expiry(at: .seconds(31)) == .consentExpired)
        // Once expired, a check no longer revives it.
        #expect(consenting.receive(try Self.checked(useCandidate: true), from: 1, at: .seconds(40)) == .none)
        #expect(consenting.isExpired(at: .seconds(40)) && consenting.checks == 1)
    }

    @Test func unauthenticatedPackets_cannotReachTheState() throws {
        // Only STUNRequestCheck makes a STUNCheckedRequest; every forged check stops there.
        var state = ICELiteState<Int>(answeredAt: .zero)
        for datagram in [try STUNCheckTests.request(password: "abcdefghijklmnopqrstuvwX", useCandidate: true),
                         try STUNCheckTests.request(username: "camFLOW1:evil", useCandidate: true),
                         ByteBuffer(bytes: [0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42] + [UInt8](repeating: 0, count: 12))] {
            if let checked = try? Self.check.check(datagram: datagram) { state.receive(checked, from: 666, at: .seconds(1)) }
        }
        #expect(state.selected == nil && state.checks == 0 && state.expiry(at: .seconds(15)) == .noCheck)
    }
}
