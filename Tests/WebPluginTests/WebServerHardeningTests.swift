import Camflow
import CamflowTesting
import Testing
@testable import WebPlugin

/// The web server's small rules, as values: numbers in LL-HLS queries, the
/// refused-origin log, and blocked requests that end with their client.
@Suite struct WebServerHardeningTests {
    @Test func hlsNumbers_arePlainDecimalDigits_ofBoundedLength() {
        #expect(HLSRoutes.decimal("0") == 0)
        #expect(HLSRoutes.decimal("123456789012") == 123_456_789_012)
        for text in ["", "+5", "-0", " 5", "5 ", "0x5", "５", "٣", "1_000", "1234567890123", "9" + String(repeating: "9", count: 40)] {
            #expect(HLSRoutes.decimal(text) == nil, "\(text.debugDescription)")
        }
        #expect(HLSMediaName("part-+1.0.m4s") == nil)
        #expect(HLSMediaName("segment-+3.m4s") == nil)
        #expect(HLSMediaName("part-1.2.m4s") == .part(msn: 1, index: 2))
    }

    @Test func aRefusedOrigin_isNamedOnce_andHowToAllowItIsSaid() {
        let log = RefusedOrigins(limit: 3)
        let start = ContinuousClock.now
        let first = log.line(for: "https://nvr.example:8443/", now: start)
        #expect(first?.contains("add \"https://nvr.example:8443\" to the web node's 'allowed-origins'") == true, "\(first ?? "")")
        #expect(log.line(for: "https://nvr.example:8443", now: start) == nil, "said once per origin")
        #expect(log.line(for: "null", now: start)?.contains("not an origin 'allowed-origins' can list") == true)
        #expect(log.line(for: "http://evil\n\u{1B}[31m.example", now: start)?.contains("\\n") == true, "control characters escaped")
        // Past the limit, nothing more is remembered: one summary line a minute.
        #expect(log.line(for: "https://a.example", now: start)?.contains("1 more origin") == true)
        for index in 0..<1000 { #expect(log.line(for: "https://\(index).example", now: start + .seconds(1)) == nil) }
        #expect(log.line(for: "https://b.example", now: start + .seconds(61))?.contains("1001 more origin") == true)
    }

    @Test func aBlockedWait_endsAtOnce_whenItsClientHangsUp() async throws {
        let store = HLSStore(configuration: .init(), maxStreams: 4)
        let peer = ConnectionPeer(group: "127.0.0.1")
        let request = Task {
            await ConnectionPeer.$current.withValue(peer) {
                await ConnectionPeer.unlessHungUp(false) {
                    await store.wait(for: "cam", timeout: .seconds(30)) { _ in false }
                }
            }
        }
        try await waitUntil("the request blocks", timeout: .seconds(5)) { store.waiting("cam") == 1 }
        let hungUp = ContinuousClock.now
        peer.hungUp()
        #expect(await request.value == false)
        #expect(store.waiting("cam") == 0)
        #expect(ContinuousClock.now - hungUp < .seconds(10), "far from the 30 s the wait would last")
        // A request of a client that has gone already does not wait at all.
        let late = await ConnectionPeer.$current.withValue(peer) {
            await ConnectionPeer.unlessHungUp(false) { await store.wait(for: "cam", timeout: .seconds(30)) { _ in false } }
        }
        #expect(late == false && store.waiting("cam") == 0)
    }
}
