import Camflow
import CamflowTesting
import NIOCore
import NIOPosix
import Synchronization
import Testing
@testable import WebRTC
import WebRTCProtocol

/// Collects what a test socket receives.
final class DatagramCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let datagrams = Mutex<[ByteBuffer]>([])

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let datagram = unwrapInboundIn(data).data
        datagrams.withLock { $0.append(datagram) }
    }
}

/// A UDP socket on 127.0.0.1 playing a browser (or an attacker) against the endpoint.
struct TestSocket {
    let channel: any Channel
    let collector: DatagramCollector
    let port: Int

    static func open() async throws -> TestSocket {
        let collector = DatagramCollector()
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return TestSocket(channel: channel, collector: collector, port: try #require(channel.localAddress?.port))
    }

    func send(_ datagram: ByteBuffer, to port: Int) async throws {
        try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: try SocketAddress(ipAddress: "127.0.0.1", port: port),
                                                          data: datagram))
    }

    func take() -> [ByteBuffer] { collector.datagrams.withLock { let all = $0; $0 = []; return all } }

    /// Waits (at most 10 s) until `count` datagrams arrived; takes them.
    func take(atLeast count: Int) async throws -> [ByteBuffer] {
        let deadline = ContinuousClock.now + .seconds(10)
        while collector.datagrams.withLock({ $0.count }) < count {
            try #require(ContinuousClock.now < deadline, "fewer than \(count) datagrams within 10 s")
            try await Task.sleep(for: .milliseconds(5))
        }
        return take()
    }

    /// Like `take(atLeast:)`, counting and keeping RTP only (sender reports come each second).
    func takeRTP(atLeast count: Int) async throws -> [ByteBuffer] {
        let deadline = ContinuousClock.now + .seconds(10)
        var rtp: [ByteBuffer] = []
        while rtp.count < count {
            try #require(ContinuousClock.now < deadline, "fewer than \(count) RTP packets within 10 s")
            rtp += take().filter { WebRTCDemux.classify($0) == .rtp }
            if rtp.count < count { try await Task.sleep(for: .milliseconds(5)) }
        }
        return rtp
    }
}

/// The endpoint in process over real UDP on loopback, its peer played by
/// the shim's DTLS client: who may reach DTLS, what is sent, NACK, PLI, consent.
@Suite struct WebRTCEndpointTests {
    static let sps: [UInt8] = [0x67, 0x42, 0xE0, 0x1F, 0xDA, 0x01, 0x40, 0x16]
    static let pps: [UInt8] = [0x68, 0xCE, 0x3C, 0x80]

    /// A length-prefixed sample of one NAL unit.
    static func sample(_ header: UInt8, size: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(size))
        buffer.writeInteger(header)
        buffer.writeRepeatingByte(0x5A, count: size - 1)
        return buffer
    }

    static func offer(fingerprint: DTLSFingerprint, ufrag: String = "peer") -> ByteBuffer {
        let lines = ["v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0",
                     "m=video 9 UDP/TLS/RTP/SAVPF 108", "c=IN IP4 0.0.0.0", "a=mid:0", "a=ice-ufrag:\(ufrag)",
                     "a=ice-pwd:abcdefghijklmnopqrstuvwx", "a=fingerprint:\(fingerprint.sdpValue)", "a=setup:actpass",
                     "a=recvonly", "a=rtcp-mux", "a=rtcp-rsize", "a=rtpmap:108 H264/90000",
                     "a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
                     "a=rtcp-fb:108 nack", "a=rtcp-fb:108 nack pli"]
        return ByteBuffer(string: lines.joined(separator: "\r\n") + "\r\n")
    }

    static func attribute(_ name: String, in sdp: String) throws -> String {
        let line = try #require(sdp.split(separator: "\r\n").first { $0.hasPrefix("a=\(name):") })
        return String(line.dropFirst(name.count + 3))
    }

    /// A signed Binding request as a browser sends it.
    static func check(ufrag: String, password: String, useCandidate: Bool = true) throws -> ByteBuffer {
        var random = SystemRandomNumberGenerator()
        var writer = STUNMessageWriter(type: STUNMessageWriter.bindingRequestType, transactionID: .random(using: &random))
        try writer.appendUsername("\(ufrag):peer")
        try writer.appendPriority(1_853_824_767)
        try writer.appendICEControlling(42)
        if useCandidate { try writer.appendUseCandidate() }
        try writer.appendMessageIntegrity(key: STUNRequestCheck(localUfrag: ufrag, localPassword: password).key)
        try writer.appendFingerprint()
        return writer.bytes
    }

    func waitFor(_ endpoint: WebRTCEndpoint, _ condition: (WebRTCEndpointStats) -> Bool) async throws -> WebRTCEndpointStats {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            let stats = await endpoint.stats()
            if condition(stats) { return stats }
            try #require(ContinuousClock.now < deadline, "not reached within 10 s: \(stats)")
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    @Test func onlyACheckedAddressReachesDTLS_thenTheGOPIsSent_NACKsResent_PLIAnswered_andConsentExpires() async throws {
        let clock = ManualClock()
        let endpoint = try await WebRTCEndpoint.start(host: "127.0.0.1", port: 0, clock: clock)
        defer { Task { await endpoint.shutdown() } }
        endpoint.publish(stream: "cam", track: WebRTCVideoTrack(
            codec: .h264, parameterSets: [ByteBuffer(bytes: Self.sps), ByteBuffer(bytes: Self.pps)], nalLengthSize: 4,
            width: 320, height: 240))
        // One frame per call: each goes out at once, no pacing to wait for.
        endpoint.publish(stream: "cam", frames: [WebRTCVideoFrame(sample: Self.sample(0x65, size: 2500), isKeyframe: true, time: 0)])
        endpoint.publish(stream: "cam", frames: [WebRTCVideoFrame(sample: Self.sample(0x41, size: 300), isKeyframe: false,
                                                                  time: 40_000_000)])

        let clientCertificate = try DTLSCertificate(commonName: "browser")
        let client = try DTLSTransport(clientOf: DTLSContext(certificate: clientCertificate))
        let answer = try await endpoint.answer(offer: Self.offer(fingerprint: clientCertificate.fingerprint), stream: "cam",
                                               candidateHost: "127.0.0.1").get()
        let ufrag = try Self.attribute("ice-ufrag", in: answer.sdp)
        let password = try Self.attribute("ice-pwd", in: answer.sdp)
        let port = endpoint.port
        #expect(answer.sdp.contains("a=candidate:1 1 udp 2130706431 127.0.0.1 \(port) typ host"))

        // An attacker: a ClientHello with no check before it, a check under a wrong password, a made-up ufrag.
        let attacker = try await TestSocket.open()
        let hello = client.outputDatagrams()
        for datagram in hello { try await attacker.send(datagram, to: port) }
        try await attacker.send(try Self.check(ufrag: ufrag, password: "wrongwrongwrongwrongwrong"), to: port)
        try await attacker.send(try Self.check(ufrag: "nobody12", password: password), to: port)
        var stats = try await waitFor(endpoint) { $0.datagramsDropped >= UInt64(hello.count + 2) }
        #expect(stats.stunAnswered == 0 && stats.handshakesCompleted == 0 && stats.sessions == 1)
        #expect(attacker.take().isEmpty, "nothing answered to an unchecked address")

        // The browser: a checked request is answered with its own address, signed.
        let browser = try await TestSocket.open()
        try await browser.send(try Self.check(ufrag: ufrag, password: password), to: port)
        let response = try STUNMessage(parsing: try #require(try await browser.take(atLeast: 1).first))
        #expect(response.type == STUNMessageWriter.bindingSuccessType)
        #expect(response.xorMappedAddress?.port == UInt16(browser.port))
        #expect(response.verifyIntegrity(key: STUNRequestCheck(localUfrag: ufrag, localPassword: password).key))

        // Now its DTLS is heard: the handshake completes, then the cached GOP comes as SRTP.
        var media: [ByteBuffer] = []
        for datagram in hello { try await browser.send(datagram, to: port) }
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
        #expect(client.state == .established)
        stats = try await waitFor(endpoint) { $0.handshakesCompleted == 1 && $0.rtpPacketsSent >= 5 }
        // SPS, PPS, three FU-A fragments of the 2500-byte IDR, the P frame.
        let sent = Int(stats.rtpPacketsSent)
        if media.count < sent { media += try await browser.takeRTP(atLeast: sent - media.count) }
        let keys = try client.srtpKeys()
        let inbound = try SRTPSession(keyAndSalt: keys.inbound, direction: .inbound)
        var packets: [ByteBuffer] = []
        for protected in media {
            var packet = protected
            try inbound.unprotect(rtp: &packet)
            packets.append(packet)
        }
        #expect(packets.count == 6)
        #expect(packets.map { $0.getInteger(at: 1, as: UInt8.self)! & 0x7F }.allSatisfy { $0 == 108 })
        #expect(packets.first?.getInteger(at: 12, as: UInt8.self) == 0x67, "the SPS first")
        #expect(packets[4].getInteger(at: 1, as: UInt8.self)! & 0x80 != 0, "marker on the keyframe's last packet")

        // A NACK for the third packet: the very bytes sent before come again.
        let outbound = try SRTPSession(keyAndSalt: keys.outbound, direction: .outbound)
        let ssrc = try #require(packets.first?.getInteger(at: 8, as: UInt32.self))
        let third = try #require(packets[2].getInteger(at: 2, as: UInt16.self))
        var nack = ByteBuffer()
        try RTCPPacket.nack(senderSSRC: 1, mediaSSRC: ssrc, entries: [RTCPNACKEntry(packetID: third, lostBitmask: 0)]).write(to: &nack)
        try outbound.protect(rtcp: &nack)
        try await browser.send(nack, to: port)
        #expect(try await browser.takeRTP(atLeast: 1) == [media[2]])

        // A PLI: the cached GOP again, under new sequence numbers.
        var pli = ByteBuffer()
        try RTCPPacket.pictureLoss(senderSSRC: 1, mediaSSRC: ssrc).write(to: &pli)
        try outbound.protect(rtcp: &pli)
        try await browser.send(pli, to: port)
        var again = try await browser.takeRTP(atLeast: 6)
        try inbound.unprotect(rtp: &again[0])
        #expect(again[0].getInteger(at: 12, as: UInt8.self) == 0x67)
        #expect(again[0].getInteger(at: 2, as: UInt16.self) == packets[5].getInteger(at: 2, as: UInt16.self)! &+ 1)

        // No check for 30 s: consent is gone and so is the session.
        await clock.advance(by: .seconds(31))
        stats = try await waitFor(endpoint) { $0.sessions == 0 }
        #expect(stats.peersExpired == 1)
    }

    @Test func sessionsAreCapped_andStreamsWithoutVideoRefused() async throws {
        var configuration = WebRTCEndpoint.Configuration()
        configuration.maxSessions = 2
        let endpoint = try await WebRTCEndpoint.start(host: "127.0.0.1", port: 0, configuration: configuration)
        defer { Task { await endpoint.shutdown() } }
        let fingerprint = try DTLSCertificate().fingerprint
        let unknown = await endpoint.answer(offer: Self.offer(fingerprint: fingerprint), stream: "cam", candidateHost: "127.0.0.1")
        #expect(throws: WHEPRefusal.self) { try unknown.get() }
        endpoint.publish(stream: "cam", track: WebRTCVideoTrack(
            codec: .h264, parameterSets: [ByteBuffer(bytes: Self.sps), ByteBuffer(bytes: Self.pps)], nalLengthSize: 4,
            width: 320, height: 240))
        var statuses: [Int] = []
        for _ in 0..<3 {
            switch await endpoint.answer(offer: Self.offer(fingerprint: fingerprint), stream: "cam", candidateHost: "127.0.0.1") {
            case .success: statuses.append(201)
            case .failure(let refusal): statuses.append(refusal.status)
            }
        }
        #expect(statuses == [201, 201, 503])
        endpoint.publish(stream: "hevc", track: WebRTCVideoTrack(codec: .h265, parameterSets: [], nalLengthSize: 4, width: nil, height: nil))
        if case .failure(let refusal) = await endpoint.answer(offer: Self.offer(fingerprint: fingerprint), stream: "hevc",
                                                               candidateHost: "127.0.0.1") {
            #expect(refusal.status == 406)
        } else {
            Issue.record("an H.265 stream was answered")
        }
    }
}
