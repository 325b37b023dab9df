import Camflow
import CamflowTesting
import NIOCore
import Testing
@testable import WebRTC
import WebRTCProtocol

/// What a WHEP client cannot do to the endpoint: hold a slot with STUN
/// checks alone, take every slot from one address, move media or NACK
/// resends to an address that never completed the handshake, or make it
/// compute HMACs without bound.
@Suite struct WebRTCEndpointHardeningTests {
    typealias Base = WebRTCEndpointTests

    static func start(_ configuration: WebRTCEndpoint.Configuration = .init(), clock: ManualClock) async throws -> WebRTCEndpoint {
        let endpoint = try await WebRTCEndpoint.start(host: "127.0.0.1", port: 0, configuration: configuration, clock: clock)
        endpoint.publish(stream: "cam", track: WebRTCVideoTrack(
            codec: .h264, parameterSets: [ByteBuffer(bytes: Base.sps), ByteBuffer(bytes: Base.pps)], nalLengthSize: 4,
            width: 320, height: 240))
        endpoint.publish(stream: "cam", frames: [WebRTCVideoFrame(sample: Base.sample(0x65, size: 2500), isKeyframe: true, time: 0)])
        return endpoint
    }

    /// An answered session: its ufrag and password.
    static func session(_ endpoint: WebRTCEndpoint, fingerprint: DTLSFingerprint) async throws -> (ufrag: String, password: String) {
        let answer = try await endpoint.answer(offer: Base.offer(fingerprint: fingerprint), stream: "cam",
                                               candidateHost: "127.0.0.1").get()
        return (try Base.attribute("ice-ufrag", in: answer.sdp), try Base.attribute("ice-pwd", in: answer.sdp))
    }

    @Test func aSessionNotConnected15sAfterTheAnswer_isClosed_whateverChecksKeepComing() async throws {
        let clock = ManualClock()
        let endpoint = try await Self.start(clock: clock)
        defer { Task { await endpoint.shutdown() } }
        let (ufrag, password) = try await Self.session(endpoint, fingerprint: try DTLSCertificate().fingerprint)
        let browser = try await TestSocket.open()
        // A check every 5 s, each answered, and never a DTLS datagram.
        for second in [0, 5, 10] {
            if second > 0 { await clock.advance(by: .seconds(5)) }
            try await browser.send(try Base.check(ufrag: ufrag, password: password), to: endpoint.port)
            #expect(try await browser.take(atLeast: 1).count == 1, "check at \(second) s answered")
        }
        await clock.advance(by: .seconds(4))
        await endpoint.sweepNow()
        #expect(await endpoint.stats().sessions == 1, "still within 15 s of the answer at 14 s")
        await clock.advance(by: .seconds(1))
        try await browser.send(try Base.check(ufrag: ufrag, password: password), to: endpoint.port)
        _ = try await browser.take(atLeast: 1)
        await endpoint.sweepNow()
        let stats = await endpoint.stats()
        #expect(stats.sessions == 0 && stats.peersExpired == 1, "\(stats)")
    }

    @Test func oneClientHoldsAtMostItsShareOfTheSessions() async throws {
        var configuration = WebRTCEndpoint.Configuration()
        configuration.maxSessions = 8
        configuration.maxSessionsPerClient = 2
        let endpoint = try await Self.start(configuration, clock: ManualClock())
        defer { Task { await endpoint.shutdown() } }
        let fingerprint = try DTLSCertificate().fingerprint
        var statuses: [String] = []
        for client in ["10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.2"] {
            switch await endpoint.answer(offer: Base.offer(fingerprint: fingerprint), stream: "cam", candidateHost: "127.0.0.1",
                                         client: client) {
            case .success: statuses.append("201")
            case .failure(let refusal):
                statuses.append("\(refusal.status)")
                #expect(refusal.message.contains("from this address"), "\(refusal.message)")
            }
        }
        #expect(statuses == ["201", "201", "429", "201"])
    }

    @Test func fullSlots_goToNewOffers_onlyFromSessionsThatDidNotConnectInTime() async throws {
        let clock = ManualClock()
        var configuration = WebRTCEndpoint.Configuration()
        configuration.maxSessions = 3
        configuration.maxSessionsPerClient = 2
        let endpoint = try await Self.start(configuration, clock: clock)
        defer { Task { await endpoint.shutdown() } }
        let fingerprint = try DTLSCertificate().fingerprint
        func offer(from client: String) async -> String {
            switch await endpoint.answer(offer: Base.offer(fingerprint: fingerprint), stream: "cam", candidateHost: "127.0.0.1",
                                         client: client) {
            case .success: "201"
            case .failure(let refusal): "\(refusal.status)"
            }
        }
        var statuses = [await offer(from: "10.0.0.1"), await offer(from: "10.0.0.1"), await offer(from: "10.0.0.1")]
        await clock.advance(by: .seconds(1))
        statuses += [await offer(from: "10.0.0.2"), await offer(from: "10.0.0.3")]
        #expect(statuses == ["201", "201", "429", "201", "503"], "young sessions keep their slots")
        // Past the grace, the oldest unconnected session of the client (or of all, when all are full) makes room.
        await clock.advance(by: .seconds(2))
        #expect(await offer(from: "10.0.0.1") == "201")
        #expect(await endpoint.stats().sessions == 3)
        #expect(await offer(from: "10.0.0.3") == "201", "the other first session, now 3 s old, went")
        #expect(await offer(from: "10.0.0.4") == "503", "the rest are younger than 3 s")
        #expect(await endpoint.stats().sessions == 3)
    }

    @Test func rateWindows_countPerSecond() {
        var window = RateWindow()
        let taken = (0..<5).map { _ in window.take(limit: 3, at: .milliseconds(10)) }
        #expect(taken == [true, true, true, false, false])
        #expect(!window.take(limit: 3, at: .milliseconds(999)) && window.take(limit: 3, at: .milliseconds(1000)), "a window from 0 ends at 1 s")
    }

    @Test func mediaAndResendsGoOnlyWhereTheHandshakeCompleted() async throws {
        let clock = ManualClock()
        let endpoint = try await Self.start(clock: clock)
        defer { Task { await endpoint.shutdown() } }
        let certificate = try DTLSCertificate(commonName: "browser")
        let client = try DTLSTransport(clientOf: DTLSContext(certificate: certificate))
        let (ufrag, password) = try await Self.session(endpoint, fingerprint: certificate.fingerprint)
        let port = endpoint.port
        let browser = try await TestSocket.open()
        let other = try await TestSocket.open()
        try await browser.send(try Base.check(ufrag: ufrag, password: password), to: port)
        _ = try await browser.take(atLeast: 1)

        // The handshake starts from the browser; another checked address's ClientHello is not answered.
        for datagram in client.outputDatagrams() { try await browser.send(datagram, to: port) }
        try await other.send(try Base.check(ufrag: ufrag, password: password), to: port)
        #expect(try await other.take(atLeast: 1).count == 1, "its check is answered")
        let stranger = try DTLSTransport(clientOf: DTLSContext(certificate: try DTLSCertificate()))
        let dropped = await endpoint.stats().datagramsDropped
        let strangerHello = stranger.outputDatagrams()
        for datagram in strangerHello { try await other.send(datagram, to: port) }
        _ = try await Base().waitFor(endpoint) { $0.datagramsDropped >= dropped + UInt64(strangerHello.count) }
        #expect(other.take().isEmpty, "no DTLS flight to a second address")

        var media: [ByteBuffer] = []
        for _ in 0..<10 where client.state != .established {
            for datagram in try await browser.take(atLeast: 1) {
                if (20...63).contains(datagram.getInteger(at: datagram.readerIndex, as: UInt8.self) ?? 0) {
                    client.receive(datagram)
                } else if WebRTCDemux.classify(datagram) == .rtp {
                    media.append(datagram)
                }
            }
            for datagram in client.outputDatagrams() { try await browser.send(datagram, to: port) }
        }
        try #require(client.state == .established)
        let sent = Int(try await Base().waitFor(endpoint) { $0.rtpPacketsSent >= 5 }.rtpPacketsSent)
        if media.count < sent { media += try await browser.takeRTP(atLeast: sent - media.count) }

        // A nominating check from the other address after the handshake: answered, media stays.
        try await other.send(try Base.check(ufrag: ufrag, password: password, useCandidate: true), to: port)
        #expect(try await other.take(atLeast: 1).allSatisfy { WebRTCDemux.classify($0) == .stun })
        endpoint.publish(stream: "cam", frames: [WebRTCVideoFrame(sample: Base.sample(0x41, size: 300), isKeyframe: false,
                                                                  time: 40_000_000)])
        #expect(try await browser.takeRTP(atLeast: 1).count == 1, "the next frame still goes to the browser")

        // A NACK the keyed peer sends from the other address: nothing resent anywhere.
        let keys = try client.srtpKeys()
        let inbound = try SRTPSession(keyAndSalt: keys.inbound, direction: .inbound)
        var first = media[0]
        try inbound.unprotect(rtp: &first)
        let ssrc = try #require(first.getInteger(at: 8, as: UInt32.self))
        let outbound = try SRTPSession(keyAndSalt: keys.outbound, direction: .outbound)
        func nack() throws -> ByteBuffer {
            var packet = ByteBuffer()
            try RTCPPacket.nack(senderSSRC: 1, mediaSSRC: ssrc,
                                entries: [RTCPNACKEntry(packetID: first.getInteger(at: 2, as: UInt16.self)!, lostBitmask: 0xFFFF)])
                .write(to: &packet)
            try outbound.protect(rtcp: &packet)
            return packet
        }
        let droppedBefore = await endpoint.stats().datagramsDropped
        try await other.send(try nack(), to: port)
        _ = try await Base().waitFor(endpoint) { $0.datagramsDropped > droppedBefore }
        #expect(await endpoint.stats().packetsResent == 0)
        // The same from the browser's address is answered, to it.
        try await browser.send(try nack(), to: port)
        #expect(try await browser.takeRTP(atLeast: 5).count >= 5)
        #expect(other.take().filter { WebRTCDemux.classify($0) != .stun }.isEmpty, "nothing but STUN answers to the other address")
    }

    @Test func checksBeyondTheBudgetOfAnAddress_areDroppedBeforeTheirHMAC() async throws {
        let clock = ManualClock()
        var configuration = WebRTCEndpoint.Configuration()
        configuration.stunChecksPerSecondPerAddress = 5
        let endpoint = try await Self.start(configuration, clock: clock)
        defer { Task { await endpoint.shutdown() } }
        let (ufrag, password) = try await Self.session(endpoint, fingerprint: try DTLSCertificate().fingerprint)
        let flood = try await TestSocket.open()
        for _ in 0..<20 { try await flood.send(try Base.check(ufrag: ufrag, password: "wrongwrongwrongwrongwrong"), to: endpoint.port) }
        var stats = try await Base().waitFor(endpoint) { $0.datagramsDropped >= 20 }
        #expect(stats.stunChecksRateLimited == 15)
        // Its good check waits for the next second.
        try await flood.send(try Base.check(ufrag: ufrag, password: password), to: endpoint.port)
        stats = try await Base().waitFor(endpoint) { $0.datagramsDropped >= 21 }
        #expect(stats.stunAnswered == 0)
        await clock.advance(by: .seconds(1))
        try await flood.send(try Base.check(ufrag: ufrag, password: password), to: endpoint.port)
        #expect(try await flood.take(atLeast: 1).count == 1)
    }

    @Test func aFloodUnderOneSessionsUfrag_leavesAnotherViewerOnTheSameIPItsChecks() async throws {
        var configuration = WebRTCEndpoint.Configuration()
        configuration.stunChecksPerSecondPerAddress = 5
        let endpoint = try await Self.start(configuration, clock: ManualClock())
        defer { Task { await endpoint.shutdown() } }
        let fingerprint = try DTLSCertificate().fingerprint
        let (floodedUfrag, _) = try await Self.session(endpoint, fingerprint: fingerprint)
        let (ufrag, password) = try await Self.session(endpoint, fingerprint: fingerprint)
        let flood = try await TestSocket.open()
        for _ in 0..<20 { try await flood.send(try Base.check(ufrag: floodedUfrag, password: "wrongwrongwrongwrongwrong"), to: endpoint.port) }
        _ = try await Base().waitFor(endpoint) { $0.stunChecksRateLimited >= 15 }
        // The same IP (loopback), another viewer's session: its budget is its own.
        let viewer = try await TestSocket.open()
        try await viewer.send(try Base.check(ufrag: ufrag, password: password), to: endpoint.port)
        #expect(try await viewer.take(atLeast: 1).count == 1)
    }

    @Test func theBudget_countsPerKeyAndSecond_andItsTableIsBounded() {
        var budget = STUNCheckBudget<String>(limit: 3, capacity: 2)
        var admitted: [Bool] = []
        for _ in 0..<5 { admitted.append(budget.admit("a", at: .zero)) }
        #expect(admitted == [true, true, true, false, false])
        let b = budget.admit("b", at: .milliseconds(500))
        let aLate = budget.admit("a", at: .milliseconds(999))
        let aNext = budget.admit("a", at: .seconds(1))
        #expect(b && !aLate && aNext, "per key, per second")
        // The table is full of live windows: newcomers share one overflow window.
        admitted = []
        for key in 0..<4 { admitted.append(budget.admit("c\(key)", at: .milliseconds(1200))) }
        #expect(admitted == [true, true, true, false])
        #expect(budget.trackedKeys == 2)
        // Once the windows are stale, a newcomer gets its own.
        let d = budget.admit("d", at: .seconds(3))
        #expect(d && budget.trackedKeys == 1)
    }
}
