import Camflow
import CamflowTesting
import NIOCore
import Testing
@testable import WebRTC
import WebRTCProtocol

/// What keeps a connected viewer's session alive. A full-ICE agent is not
/// bound to send checks after nomination: libnice (GStreamer's webrtcbin,
/// 1.22) sends none, only its SRTCP receiver reports, and was dropped after
/// 30 s while playing.
@Suite struct WebRTCConsentTests {
    typealias Base = WebRTCEndpointTests

    /// A browser connected to `endpoint` (check, then DTLS): its socket and SRTP keys.
    static func connect(_ endpoint: WebRTCEndpoint) async throws -> (socket: TestSocket, keys: SRTPKeys) {
        let certificate = try DTLSCertificate(commonName: "browser")
        let client = try DTLSTransport(clientOf: DTLSContext(certificate: certificate))
        let (ufrag, password) = try await WebRTCEndpointHardeningTests.session(endpoint, fingerprint: certificate.fingerprint)
        let browser = try await TestSocket.open()
        try await browser.send(try Base.check(ufrag: ufrag, password: password), to: endpoint.port)
        _ = try await browser.take(atLeast: 1)
        for datagram in client.outputDatagrams() { try await browser.send(datagram, to: endpoint.port) }
        for _ in 0..<10 where client.state != .established {
            for datagram in try await browser.take(atLeast: 1)
            where (20...63).contains(datagram.getInteger(at: datagram.readerIndex, as: UInt8.self) ?? 0) {
                client.receive(datagram)
            }
            for datagram in client.outputDatagrams() { try await browser.send(datagram, to: endpoint.port) }
        }
        try #require(client.state == .established)
        _ = try await Base().waitFor(endpoint) { $0.handshakesCompleted == 1 }
        return (browser, try client.srtpKeys())
    }

    @Test func authenticatedRTCPFromTheMediaAddress_keepsConsent_forgedRTCPDoesNot() async throws {
        let clock = ManualClock()
        let endpoint = try await WebRTCEndpointHardeningTests.start(clock: clock)
        defer { Task { await endpoint.shutdown() } }
        let (browser, keys) = try await Self.connect(endpoint)
        let outbound = try SRTPSession(keyAndSalt: keys.outbound, direction: .outbound)
        func receiverReport() throws -> ByteBuffer {
            var packet = ByteBuffer()
            try RTCPPacket.receiverReport(ssrc: 7, reports: []).write(to: &packet)
            try outbound.protect(rtcp: &packet)
            return packet
        }

        // Datagrams reach the endpoint's one socket in the order sent: once a check with an unknown ufrag
        // (from elsewhere, so it refreshes nothing) is counted as dropped, what was sent before it was read.
        let other = try await TestSocket.open()
        func barrier() async throws {
            let dropped = await endpoint.stats().datagramsDropped
            try await other.send(try Base.check(ufrag: "nobody12", password: "abcdefghijklmnopqrstuvwx"), to: endpoint.port)
            _ = try await Base().waitFor(endpoint) { $0.datagramsDropped > dropped }
        }

        // Only receiver reports, every 10 s, no STUN check after the handshake: the session stays.
        for _ in 0..<4 {
            await clock.advance(by: .seconds(10))
            try await browser.send(try receiverReport(), to: endpoint.port)
            try await barrier()
            await endpoint.sweepNow()
        }
        #expect(await endpoint.stats().sessions == 1, "40 s of receiver reports and no check")

        // A report whose authentication tag is wrong refreshes nothing: 30 s after the last good one, gone.
        var forged = try receiverReport()
        let last = forged.writerIndex - 1
        forged.setInteger(forged.getInteger(at: last, as: UInt8.self)! ^ 0xFF, at: last)
        await clock.advance(by: .seconds(20))
        try await browser.send(forged, to: endpoint.port)
        try await barrier()
        await endpoint.sweepNow()
        #expect(await endpoint.stats().sessions == 1)
        await clock.advance(by: .seconds(10))
        await endpoint.sweepNow()
        let stats = await endpoint.stats()
        #expect(stats.sessions == 0 && stats.peersExpired == 1, "\(stats)")
    }
}
