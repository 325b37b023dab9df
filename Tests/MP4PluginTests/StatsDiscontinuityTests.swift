import CamflowTesting
import Camflow
import Foundation
import ISOBMFF
@testable import MP4Plugin
import NIOCore
import Testing

/// Clocks that restart or leap, and durations from the wire at their
/// largest: stats says so and starts afresh, never reporting a negative
/// interval, rate or GOP, and never trapping.
@Suite struct StatsDiscontinuityTests {
    /// ftyp + moov of the baseline fixture: track 1, H.264, timescale 12800.
    func initPacket() throws -> Packet {
        let file = try Data(contentsOf: fixtures.appendingPathComponent("h264-baseline.mp4"))
        return Packet(kind: .initSegment, stream: "cam", payload: ByteBuffer(bytes: file.prefix(790)))
    }

    /// 25 fps video frames (512 ticks each), a keyframe every 25, at these decode times.
    func frames(_ times: [Int64], duration: Int64 = 512) -> [Packet] {
        times.enumerated().map { index, dts in
            Packet(kind: .frame, stream: "cam", sequence: UInt64(index), payload: ByteBuffer(repeating: 1, count: 100),
                   media: MediaInfo(track: 1, codec: "avc1.42C00D", timescale: 12800, dts: dts, pts: dts,
                                    duration: duration, keyframe: index % 25 == 0))
        }
    }

    func run(_ packets: [Packet], options: [String: OptionValue] = ["interval": "1s"]) async throws -> [Event] {
        let run = try await TestHarness(plugins: [MP4Plugin.self],
                                        nodeTypes: [PacketSource.type(packets, kinds: [.initSegment, .frame])]).run([
            NodeSpec(id: "src", type: "packets"),
            NodeSpec(id: "stats", type: "stats", inputs: ["src"], options: options),
        ], collect: ["stats"])
        return (run.packets["stats"] ?? []).compactMap(\.event)
    }

    func expectNothingNegative(_ events: [Event]) {
        for event in events where event.name == "stats" {
            for field in ["interval-seconds", "fps", "bitrate-bps", "gop-seconds", "gop-frames", "fragment-seconds"] {
                switch event[field] {
                case .double(let value)?: #expect(value >= 0 && value.isFinite, "\(field) = \(value)")
                case .int(let value)?: #expect(value >= 0, "\(field) = \(value)")
                default: continue
                }
            }
        }
    }

    @Test func aClockThatStartsOver_isADiscontinuity() async throws {
        // Three seconds, then the camera's clock starts again at 0 (a restart, a looped file).
        let times = (0..<75).map { Int64($0) * 512 } + (0..<75).map { Int64($0) * 512 }
        let events = try await run([try initPacket()] + frames(times))
        let discontinuities = events.filter { $0.name == "discontinuity" }
        #expect(discontinuities.count == 1)
        #expect(discontinuities.first?["direction"] == .string("backward"))
        #expect(discontinuities.first?["from-seconds"] == .double(3))
        #expect(discontinuities.first?["to-seconds"] == .double(0))
        expectNothingNegative(events)
        let stats = events.filter { $0.name == "stats" }
        #expect(stats.last?["total-frames"] == .int(150), "every frame counted on both sides of the break")
        #expect(stats.allSatisfy { $0["gaps"] == .int(0) }, "a new timeline is not a gap")
    }

    @Test func aLeapForward_pastMaxJump_isADiscontinuity_andASmallerOneAGap() async throws {
        let hour: Int64 = 3600 * 12800
        let leap = try await run([try initPacket()] + frames((0..<50).map { Int64($0) * 512 } + (0..<50).map { hour + Int64($0) * 512 }))
        #expect(leap.filter { $0.name == "discontinuity" }.first?["direction"] == .string("forward"))
        expectNothingNegative(leap)
        let gap = try await run([try initPacket()] + frames((0..<50).map { Int64($0) * 512 } + (0..<50).map { 12800 * 10 + Int64($0) * 512 }))
        #expect(gap.filter { $0.name == "discontinuity" }.isEmpty, "10 s is a gap, under max-jump")
        #expect(gap.filter { $0.name == "stats" }.contains { $0["gaps"] == .int(1) })
    }

    @Test func durationsAtTheirLargest_neitherTrapNorGoNegative() async throws {
        let events = try await run([try initPacket()] + frames((0..<30).map { Int64($0) * 512 }, duration: .max))
        #expect(!events.filter { $0.name == "stats" }.isEmpty)
        expectNothingNegative(events)
        let extremes = try await run([try initPacket()] + frames([.max, .min, 0, .max - 1]))
        expectNothingNegative(extremes)
    }

    @Test func keyframeGOPs_areNeverNegative_whenTheClockGoesBack() {
        var detector = KeyframeDetector()
        var idr = NALSummary()
        idr.isKeyframe = true
        _ = detector.frame(track: 1, pts: .max, timescale: 90000, size: 1, sync: true, nal: idr)
        let (_, report) = detector.frame(track: 1, pts: .min, timescale: 90000, size: 1, sync: true, nal: idr)
        #expect(report?.gopSeconds == nil)
        let (_, next) = detector.frame(track: 1, pts: .min + 90000, timescale: 90000, size: 1, sync: true, nal: idr)
        #expect(next?.gopSeconds == 1)
    }
}
