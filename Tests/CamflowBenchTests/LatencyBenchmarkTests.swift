import Testing
import WebRTCProtocol
@testable import CamflowBench

/// The pure parts of `camflow bench latency`: percentiles, mapping a
/// presented frame back to the simulator's send time (by the answer's RTP
/// media clock, across the 2^32 wrap, or by the frame number in the
/// picture), and the lines it prints.
@Suite struct LatencyBenchmarkTests {
    /// 25 fps, 250 frames a pass, the simulator's origin at 1000 ms.
    static let timeline = SenderTimeline(originMilliseconds: 1000, frameDuration: 0.04, framesPerLoop: 250)

    @Test func percentiles_nearestRank() {
        let values = (1...100).map(Double.init).shuffled()
        #expect(values.percentile(50) == 50 && values.percentile(95) == 95 && values.percentile(100) == 100)
        #expect([7.0].percentile(95) == 7 && [Double]().percentile(50) == nil)
    }

    @Test func rtpClock_mapsAcrossTheWrap() {
        // The reference 0.5 s (45000 ticks) before the 32-bit timestamp wraps.
        let clock = CamflowMediaClock(ssrc: 1, rtpTimestamp: UInt32.max - 44_999, mediaNanoseconds: 12_360_000_000)
        #expect(clock.mediaSeconds(ofRTPTimestamp: UInt32.max - 44_999) == 12.36)
        // 1 s later: past the wrap.
        #expect(abs(clock.mediaSeconds(ofRTPTimestamp: 45_000) - 13.36) < 1e-9)
        // A frame of the joining GOP, 0.2 s before the reference.
        #expect(abs(clock.mediaSeconds(ofRTPTimestamp: UInt32.max - 44_999 - 18_000) - 12.16) < 1e-9)
        // An hour later still maps (within ±6.6 h of the reference).
        #expect(abs(clock.mediaSeconds(ofRTPTimestamp: (UInt32.max - 44_999) &+ 3600 * 90000) - 3612.36) < 1e-9)
    }

    @Test func mediaClockAttribute_roundTrips() {
        let clock = CamflowMediaClock(ssrc: 3_024_237_152, rtpTimestamp: 2_686_089_967, mediaNanoseconds: 12_360_000_000)
        #expect(clock.attribute == "x-camflow-media-clock:3024237152 2686089967 12.360000000")
        #expect(CamflowMediaClock(attribute: "a=" + clock.attribute) == clock)
        #expect(CamflowMediaClock(sdp: "v=0\r\na=ice-lite\r\na=\(clock.attribute)\r\nm=video 9 UDP/TLS/RTP/SAVPF 108\r\n") == clock)
        let negative = CamflowMediaClock(ssrc: 1, rtpTimestamp: 2, mediaNanoseconds: -1_500_000)
        #expect(negative.attribute.hasSuffix(" -0.001500000") && CamflowMediaClock(attribute: Substring(negative.attribute)) == negative)
        for bad in ["x-camflow-media-clock:1 2", "x-camflow-media-clock:1 2 x", "x-camflow-media-clock:1 2 1.0000000001",
                    "x-camflow-media-clock:-1 2 3", "x-camflow-media-clock:1 2 +3", "x-camflow-clock:1 2 3"] {
            #expect(CamflowMediaClock(attribute: Substring(bad)) == nil, "\(bad)")
        }
    }

    @Test func frameNumber_picksThePassSentLastBeforeThePresentation() {
        // Frame 260 (pass 1, number 10) is sent at 1000 + 261 * 40 = 11440 ms.
        #expect(Self.timeline.frameIndex(number: 10, presentedAt: 11_440) == 260)
        #expect(Self.timeline.frameIndex(number: 10, presentedAt: 11_439) == 10)
        #expect(Self.timeline.frameIndex(number: 10, presentedAt: 11_440 + 9_000) == 260)
        // Number 249 at 11440 ms: the last pass's last frame (249), not one still to come (499).
        #expect(Self.timeline.frameIndex(number: 249, presentedAt: 11_440) == 249)
    }

    @Test func analysis_mapsByClockAndByNumbers() {
        var recording = LatencyRecording()
        let clock = CamflowMediaClock(ssrc: 1, rtpTimestamp: 4_294_900_000, mediaNanoseconds: 10_000_000_000)
        recording.clocks["webrtc"] = clock
        // 100 frames from media 10 s (frame 250, number 0), each presented 60 ms after its send.
        for index in 0..<100 {
            let media = 10 + Double(index) * 0.04
            let at = Self.timeline.sendTime(media: media) + 60
            recording.frames["webrtc", default: []].append(.init(
                at: at, media: 0, rtp: Int64(4_294_900_000 &+ UInt32(index * 3600)), number: index % 25 == 0 ? index : -1))
            // MSE: its own timeline from 0 (the viewer's rebase), 250 ms behind; one picture misread.
            recording.frames["mse", default: []].append(.init(
                at: at + 190, media: Double(index) * 0.04, rtp: -1, number: index % 25 == 0 ? (index == 50 ? 7 : index) : -1))
        }
        let ways = LatencyAnalysis.analyse(recording, timeline: Self.timeline, warmup: 1, ways: ["webrtc", "mse", "ll-hls"])
        #expect(ways.map(\.mapping) == ["rtp clock", "frame numbers", ""])
        // The first second (25 frames) is warm-up.
        #expect(ways[0].samples.count == 75 && ways[0].latencies.allSatisfy { abs($0 - 60) < 0.01 })
        #expect(ways[0].numbersRead == 4 && ways[0].numbersAgreeing == 4)
        #expect(ways[1].samples.count == 75 && ways[1].latencies.allSatisfy { abs($0 - 250) < 0.01 })
        #expect(ways[1].numbersRead == 4 && ways[1].numbersAgreeing == 3)
        #expect(LatencyReport.line(ways[0]).hasPrefix("webrtc  p50 60 ms  p95 60 ms  max 60 ms  (75 frames; first 10 %: p50 60 ms"))
        #expect(LatencyReport.goal(ways[0]) == "  goal p50 <= 150 ms, p95 <= 250 ms: met")
        #expect(LatencyReport.goal(ways[1]) == "  goal p50 <= 300 ms: met")
        #expect(LatencyReport.line(ways[2]) == "ll-hls  no frames measured")
    }

    @Test func report_startAndEndShowDrift() {
        // An hour: 100 ms for the first half, 200 ms after; the ends are the first and last minute.
        let samples = stride(from: 0.0, through: 3_600_000, by: 1000).map { (at: $0, milliseconds: $0 < 1_800_000 ? 100.0 : 200.0) }
        let (start, end, label) = LatencyReport.ends(samples)
        #expect(start == 100 && end == 200 && label.first == "first minute" && label.last == "last minute")
    }

    @Test func recording_readsTheDriversLines() {
        let text = """
            {"type": "frame", "way": "webrtc", "at": 5.5, "presented": 5.0, "media": 0, "rtp": 123, "number": -1}
            {"type": "clock", "way": "webrtc", "attribute": "x-camflow-media-clock:1 2 3.000000000"}
            {"type": "arrival", "way": "mse", "at": 7, "media": 0.04}
            {"type": "diag", "way": "mse", "at": 8, "bufferedAhead": 0.25, "paused": false}
            {"type": "error", "way": "ll-hls", "message": "no frames"}
            not json
            """
        let recording = LatencyRecording(jsonLines: text)
        #expect(recording.frames["webrtc"] == [.init(at: 5.5, media: 0, rtp: 123, number: -1)])
        #expect(recording.clocks["webrtc"] == CamflowMediaClock(ssrc: 1, rtpTimestamp: 2, mediaNanoseconds: 3_000_000_000))
        #expect(recording.arrivals["mse"] == [.init(at: 7, media: 0.04)])
        #expect(recording.diagnostics["mse"]?.first?["bufferedAhead"] == 0.25 && recording.errors == ["ll-hls: no frames"])
    }
}
