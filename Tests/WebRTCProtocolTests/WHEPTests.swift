import NIOCore
import Testing
@testable import WebRTCProtocol

/// The offer parser and the answer camflow builds from it (design note §2).
@Suite struct WHEPTests {
    static let constrainedBaseline = WHEPStreamCodec.h264(try! H264ProfileLevel(sps: [0x67, 0x42, 0xE0, 0x1F, 0x8C]))
    static let local = try! ICECredentials(ufrag: "camFLOW1", password: "abcdefghijklmnopqrstuvwx")
    static let ours: [UInt8] = (0..<32).map { UInt8($0 * 7 + 1) }
    static let oursText = ours.map { ($0 < 16 ? "0" : "") + String($0, radix: 16, uppercase: true) }.joined(separator: ":")

    static func parameters(candidates: [WHEPCandidate]? = nil) -> WHEPAnswerParameters {
        WHEPAnswerParameters(sessionID: 1234, credentials: local, fingerprint: ours,
                             candidates: candidates ?? [try! WHEPCandidate(address: "127.0.0.1", port: 8189)],
                             ssrc: 305_419_896, cname: "camflowcname", msid: ("camflow", "video0"))
    }

    @Test func chromiumOffer_parses() throws {
        let offer = try SDPOffer(parsing: Offers.chromium156)
        #expect(offer.bundleGroups == [["0", "1"]] && offer.sections.map(\.kind) == ["video", "audio"])
        let video = offer.sections[0]
        #expect(video.mid == "0" && video.direction == .recvonly && video.rtcpMux && video.rtcpReducedSize)
        #expect(video.transport.iceUfrag == "Xq3k" && video.transport.icePassword == "e1Vt9mZ0PpS4kQ7wL2nR8bYc")
        #expect(video.transport.sha256Fingerprint == Offers.fingerprintBytes && video.transport.setup == .actpass)
        #expect(video.extensionMaps.count == 11 && video.extensionMaps[8].uri == "urn:ietf:params:rtp-hdrext:sdes:mid")
        #expect(video.rtpMap(108) == video.rtpMaps.first { $0.payloadType == 108 } && video.rtpMap(108)?.encoding == "H264")
        #expect(video.formatParameters[41] == "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=f4001f")
        #expect(video.offersFeedback("nack pli", for: 108) && !video.offersFeedback("nack pli", for: 118))
        #expect(offer.sections[1].rtpMap(111)?.channels == 2)
        // The same bytes as an HTTP body.
        #expect(try SDPOffer(parsing: ByteBuffer(string: Offers.chromium156)).sections.count == 2)
    }

    @Test func chromiumOffer_constrainedBaseline_answersExactly() throws {
        let negotiation = try WHEPNegotiation(offer: SDPOffer(parsing: Offers.chromium156), codec: Self.constrainedBaseline)
        #expect(negotiation.payloadType == 108 && negotiation.videoSection == 0 && negotiation.bundled)
        #expect(negotiation.remoteUfrag == "Xq3k" && negotiation.remotePassword == "e1Vt9mZ0PpS4kQ7wL2nR8bYc")
        #expect(negotiation.remoteFingerprint == Offers.fingerprintBytes)
        let expected = [
            "v=0", "o=- 1234 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0", "a=ice-lite",
            "m=video 9 UDP/TLS/RTP/SAVPF 108", "c=IN IP4 0.0.0.0", "a=mid:0",
            "a=ice-ufrag:camFLOW1", "a=ice-pwd:abcdefghijklmnopqrstuvwx", "a=fingerprint:sha-256 \(Self.oursText)",
            "a=setup:passive", "a=sendonly", "a=rtcp-mux", "a=rtcp-rsize", "a=rtpmap:108 H264/90000",
            "a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
            "a=rtcp-fb:108 nack", "a=rtcp-fb:108 nack pli", "a=rtcp-fb:108 ccm fir",
            "a=ssrc:305419896 cname:camflowcname", "a=msid:camflow video0",
            "a=candidate:1 1 udp 2130706431 127.0.0.1 8189 typ host", "a=end-of-candidates",
            "m=audio 0 UDP/TLS/RTP/SAVPF 111", "c=IN IP4 0.0.0.0", "a=mid:1", "a=inactive",
        ].joined(separator: "\r\n") + "\r\n"
        #expect(try negotiation.answer(Self.parameters()) == expected)
    }

    /// SPS bytes → payload type in Chromium 156's offer (no High, no Constrained High offered).
    @Test(arguments: [
        ([0x67, 0x42, 0xE0, 0x1F], 108), ([0x67, 0x42, 0xC0, 0x1E], 108), ([0x67, 0x42, 0x00, 0x1E], 102),
        ([0x67, 0x4D, 0x00, 0x1F], 116), ([0x67, 0x4D, 0x40, 0x29], 116), ([0x27, 0x64, 0x00, 0x28], 108),
        ([0x67, 0x64, 0x0C, 0x28], 108), ([0x67, 0xF4, 0x00, 0x1F], 108), ([0x67, 0x6E, 0x00, 0x1F], 108),
    ] as [([UInt8], UInt8)])
    func payloadType_followsTheStreamsProfile(sps: [UInt8], payloadType: UInt8) throws {
        let offer = try SDPOffer(parsing: Offers.chromium156)
        let negotiation = try WHEPNegotiation(offer: offer, codec: .h264(H264ProfileLevel(sps: sps)))
        #expect(negotiation.payloadType == payloadType)
    }

    @Test func profiles_areClassifiedAsLibwebrtcDoes() {
        func profile(_ text: Substring) -> H264Profile? { H264ProfileLevel(profileLevelID: text)?.profile }
        #expect(profile("42e01f") == .constrainedBaseline && profile("4d801f") == .constrainedBaseline)
        #expect(profile("42001f") == .baseline && profile("4d001f") == .main && profile("58001f") == .extended)
        #expect(profile("640028") == .high && profile("640c28") == .constrainedHigh && profile("f4001f") == .other)
        #expect(profile("42e01") == nil && profile("42e01g") == nil && profile("+42e01") == nil)
        #expect(H264ProfileLevel(profileLevelID: "4D401F")?.description == "4d401f")
        #expect(throws: WebRTCWireError.self) { try H264ProfileLevel(sps: [0x68, 0x42, 0xE0, 0x1F]) }
        #expect(throws: WebRTCWireError.self) { try H264ProfileLevel(sps: [0x67, 0x42]) }
    }

    @Test func firefoxStyleOffer_sessionFingerprint_audioFirst() throws {
        let offer = try SDPOffer(parsing: Offers.firefoxStyle)
        let negotiation = try WHEPNegotiation(offer: offer, codec: Self.constrainedBaseline)
        #expect(negotiation.payloadType == 126 && negotiation.videoSection == 1)
        #expect(negotiation.remoteFingerprint == Offers.fingerprintBytes && negotiation.remoteUfrag == "8b1c2d3e")
        let answer = try negotiation.answer(Self.parameters())
        let lines = answer.split(separator: "\r\n")
        #expect(lines.contains("a=group:BUNDLE 1") && !lines.contains("a=rtcp-rsize"))
        #expect(Array(lines[6...9]) == ["m=audio 0 UDP/TLS/RTP/SAVPF 109", "c=IN IP4 0.0.0.0", "a=mid:0", "a=inactive"])
        #expect(lines.contains("m=video 9 UDP/TLS/RTP/SAVPF 126") && lines.contains("a=rtcp-fb:126 nack pli"))
        #expect(!lines.contains { $0.hasPrefix("a=rtcp-fb:126 goog-remb") })
        // The answer reads back as an offer would: two sections, one live.
        let again = try SDPOffer(parsing: answer)
        #expect(again.sections.map(\.port) == [0, 9] && again.sections[1].direction == .sendonly)
    }

    @Test func h265_onlyWhenOffered() throws {
        #expect(throws: WebRTCWireError.self) { try WHEPNegotiation(offer: SDPOffer(parsing: Offers.chromium156), codec: .h265) }
        let withHEVC = Offers.chromium156.replacing("a=rtpmap:118 red/90000", with: "a=rtpmap:118 H265/90000", maxReplacements: 1)
        let negotiation = try WHEPNegotiation(offer: SDPOffer(parsing: withHEVC), codec: .h265)
        #expect(negotiation.payloadType == 118 && negotiation.encoding == "H265")
        #expect(try negotiation.answer(Self.parameters()).contains("a=rtpmap:118 H265/90000\r\n"))
    }

    @Test func candidates_inPriorityOrder_andCheckedArguments() throws {
        let negotiation = try WHEPNegotiation(offer: SDPOffer(parsing: Offers.chromium156), codec: Self.constrainedBaseline)
        let two = try [WHEPCandidate(address: "203.0.113.7", port: 8189),
                       WHEPCandidate(STUNAddress(ipv6High: 0x2001_0DB8 << 32, low: 1, port: 8189))]
        let answer = try negotiation.answer(Self.parameters(candidates: two))
        #expect(answer.contains("a=candidate:1 1 udp 2130706431 203.0.113.7 8189 typ host\r\n"))
        #expect(answer.contains("a=candidate:2 1 udp 2130706175 2001:db8:0:0:0:0:0:1 8189 typ host\r\n"))
        #expect(throws: WebRTCWireError.self) { try WHEPCandidate(address: "1.2.3.4\r\na=x", port: 1) }
        #expect(throws: WebRTCWireError.self) { try WHEPCandidate(address: "host.example", port: 1) }
        #expect(throws: WebRTCWireError.self) { try WHEPCandidate(address: "1.2.3.4", port: 0) }
        #expect(throws: WebRTCWireError.self) { try ICECredentials(ufrag: "abc", password: "abcdefghijklmnopqrstuvwx") }
        #expect(throws: WebRTCWireError.self) { try ICECredentials(ufrag: "abcd", password: "abcdefghijklmnopqrstu") }
        #expect(throws: WebRTCWireError.self) { try ICECredentials(ufrag: "ab:d", password: "abcdefghijklmnopqrstuvwx") }
        var bad = Self.parameters()
        bad.fingerprint = Array(Self.ours.prefix(31))
        #expect(throws: WebRTCWireError.self) { try negotiation.answer(bad) }
        bad = Self.parameters(candidates: [])
        #expect(throws: WebRTCWireError.self) { try negotiation.answer(bad) }
        bad = Self.parameters()
        bad.cname = "a b"
        #expect(throws: WebRTCWireError.self) { try negotiation.answer(bad) }
        bad = Self.parameters()
        bad.sessionAttributes = ["x-camflow-media-clock:1 2 3", "x\u{1}"]
        #expect(throws: WebRTCWireError.self) { try negotiation.answer(bad) }
        bad.sessionAttributes = ["x-camflow-media-clock:305419896 90000 1.0"]
        #expect(try negotiation.answer(bad).contains("a=ice-lite\r\n") && negotiation.answer(bad).contains("a=x-camflow-media-clock:305419896 90000 1.0\r\n"))

        var generator = SystemRandomNumberGenerator()
        let random = ICECredentials.random(using: &generator)
        #expect(random.ufrag.count == 8 && random.password.count == 24)
        #expect(try ICECredentials(ufrag: random.ufrag, password: random.password) == random)
    }
}
