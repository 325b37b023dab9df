import NIOCore
import Testing
@testable import WebRTC
import WebRTCProtocol

/// The answer's `a=x-camflow-media-clock`: the peer's SSRC, and the source
/// time of the stream's latest frame at that frame's RTP timestamp.
@Suite struct WebRTCMediaClockTests {
    @Test func theAnswerTiesTheRTPClockToTheSourcesTimes() async throws {
        let endpoint = try await WebRTCEndpoint.start(host: "127.0.0.1", port: 0)
        defer { Task { await endpoint.shutdown() } }
        endpoint.publish(stream: "cam", track: WebRTCVideoTrack(
            codec: .h264, parameterSets: [ByteBuffer(bytes: WebRTCEndpointTests.sps), ByteBuffer(bytes: WebRTCEndpointTests.pps)],
            nalLengthSize: 4, width: 320, height: 240))
        let offer = WebRTCEndpointTests.offer(fingerprint: try DTLSCertificate().fingerprint)
        // No frame yet: no clock to tell.
        let early = try await endpoint.answer(offer: offer, stream: "cam", candidateHost: "127.0.0.1").get()
        #expect(CamflowMediaClock(sdp: early.sdp) == nil && !early.sdp.contains("x-camflow-media-clock"))

        // The timeline runs 5 s behind the source (a camera that started its times over).
        endpoint.publish(stream: "cam", frames: [
            WebRTCVideoFrame(sample: WebRTCEndpointTests.sample(0x65, size: 100), isKeyframe: true, time: 1_000_000_000,
                             sourceTime: 6_000_000_000),
            WebRTCVideoFrame(sample: WebRTCEndpointTests.sample(0x41, size: 100), isKeyframe: false, time: 1_040_000_000,
                             sourceTime: 6_040_000_000),
        ])
        let answer = try await endpoint.answer(offer: offer, stream: "cam", candidateHost: "127.0.0.1").get()
        let clock = try #require(CamflowMediaClock(sdp: answer.sdp))
        #expect(clock.mediaNanoseconds == 6_040_000_000)
        #expect(answer.sdp.contains("a=ssrc:\(clock.ssrc) cname:"))
        // A session attribute: before the first m= line.
        let lines = answer.sdp.split(separator: "\r\n")
        let attribute = try #require(lines.firstIndex { $0.hasPrefix("a=x-camflow-media-clock:") })
        #expect(attribute < (lines.firstIndex { $0.hasPrefix("m=") } ?? 0))
        // The frame 40 ms earlier maps 3600 ticks back.
        #expect(abs(clock.mediaSeconds(ofRTPTimestamp: clock.rtpTimestamp &- 3600) - 6.0) < 1e-9)
    }

    @Test func ticks_areTheTimelineOnTheNinetyKilohertzClock() {
        #expect(WebRTCStreamMedia.ticks(1_040_000_000) == 93_600)
        #expect(WebRTCStreamMedia.ticks(11_111) == 0 && WebRTCStreamMedia.ticks(11_112) == 1)
        // Wraps as RTP timestamps do: 2^32 + 5 ticks (about 13.25 h) is 5.
        #expect(WebRTCStreamMedia.ticks(47_721_858_900_000) == 5)
    }
}
