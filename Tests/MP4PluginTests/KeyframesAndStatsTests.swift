import CamflowTesting
import Camflow
import FilesPlugin
import ISOBMFF
@testable import MP4Plugin
import NIOCore
import Testing

@Suite struct KeyframeDetectorTests {
    @Test func nalTypesDecide_andDisagreementsAreCounted() {
        var detector = KeyframeDetector()
        var idr = NALSummary()
        idr.isKeyframe = true
        let delta = NALSummary()
        #expect(detector.frame(track: 1, pts: 0, timescale: 25, size: 10, sync: true, nal: idr).isKeyframe)
        // An encoder that flags every frame as sync.
        #expect(!detector.frame(track: 1, pts: 1, timescale: 25, size: 10, sync: true, nal: delta).isKeyframe)
        #expect(!detector.frame(track: 1, pts: 2, timescale: 25, size: 10, sync: true, nal: delta).isKeyframe)
        let (isKey, report) = detector.frame(track: 1, pts: 3, timescale: 25, size: 99, sync: true, nal: idr)
        #expect(isKey)
        #expect(report == .init(track: 1, pts: 3, timescale: 25, size: 99, gopFrames: 3, gopSeconds: 0.12, disagreed: false))
        #expect(detector.disagreements == 2)
        #expect(detector.keyframes == 2)
    }

    @Test func withoutNALs_theSyncFlagDecides() {
        var detector = KeyframeDetector()
        #expect(detector.frame(track: 2, pts: 0, timescale: 48000, size: 5, sync: true, nal: nil).isKeyframe)
        #expect(detector.disagreements == 0)
    }
}

@Suite struct KeyframesNodeTests {
    let harness = TestHarness(plugins: [FilesPlugin.self, MP4Plugin.self])

    func keyframeEvents(_ file: String, frames: Bool) async throws -> [Event] {
        let run = try await harness.run([
            NodeSpec(id: "replay", type: "file-replay", options: ["path": fixturePath(file)]),
            NodeSpec(id: "parse", type: "mp4-parse", inputs: ["replay"], options: ["frames": .scalar("\(frames)")]),
            NodeSpec(id: "keyframes", type: "keyframes", inputs: ["parse"]),
        ], collect: ["keyframes"])
        return (run.packets["keyframes"] ?? []).compactMap(\.event).filter { $0.name == "keyframe" }
    }

    @Test(arguments: [true, false])
    func changingGOP_isMeasured_fromFramesOrFragments(_ frames: Bool) async throws {
        // Keyframes at 0, 1, 3, 3.5 and 4 s.
        let events = try await keyframeEvents("h264-gop-change.mp4", frames: frames)
        #expect(events.count == 5)
        #expect(events.compactMap { $0["gop-seconds"] } == [.double(1), .double(2), .double(0.52), .double(0.48)])
        #expect(events.compactMap { $0["gop-frames"] } == [.int(25), .int(50), .int(13), .int(12)])
        #expect(events.allSatisfy { $0["disagreements"] == .int(0) })
    }

    @Test func h265_IRAPsAreKeyframes() async throws {
        let events = try await keyframeEvents("h265.mp4", frames: true)
        #expect(events.count == 3)
    }

    @Test func only_passesKeyframesOnly() async throws {
        let run = try await harness.run([
            NodeSpec(id: "replay", type: "file-replay", options: ["path": fixturePath("h264-baseline.mp4")]),
            NodeSpec(id: "parse", type: "mp4-parse", inputs: ["replay"], options: ["emit": ["init", "frame"]]),
            NodeSpec(id: "keyframes", type: "keyframes", inputs: ["parse"], options: ["only": "true"]),
        ], collect: ["keyframes"])
        let frames = (run.packets["keyframes"] ?? []).filter { $0.kind == .frame }
        #expect(frames.count == 3)
        #expect(frames.allSatisfy { $0.isKeyframe })
    }
}

@Suite struct StatsTests {
    @Test func statsOfTheCameraLikeFixture() async throws {
        let run = try await TestHarness(plugins: [FilesPlugin.self, MP4Plugin.self]).run([
            NodeSpec(id: "cam", type: "file-replay", options: ["path": fixturePath("h264-main-aac.mp4")]),
            NodeSpec(id: "parse", type: "mp4-parse", inputs: ["cam"], options: ["frames": "true"]),
            NodeSpec(id: "keyframes", type: "keyframes", inputs: ["parse"]),
            NodeSpec(id: "stats", type: "stats", inputs: ["keyframes"], options: ["interval": "2s"]),
        ], collect: ["stats"])
        let events = (run.packets["stats"] ?? []).compactMap(\.event)
        #expect(events.allSatisfy { $0.name == "stats" })
        let video = events.filter { $0["kind"] == .string("video") }
        let audio = events.filter { $0["kind"] == .string("audio") }
        #expect(video.count == 3, "6 s of video in 2 s intervals")
        #expect(audio.count == 4, "6.08 s of audio: three intervals and the rest at the end")
        #expect(audio.last?["total-frames"] == .int(283))
        #expect(video.allSatisfy { $0["fps"] == .double(25) && $0["codec"] == .string("avc1.4D4033") }, "\(video)")
        #expect(video.allSatisfy { $0["resolution"] == .string("640x360") })
        #expect(video.last?["gop-seconds"] == .double(2))
        #expect(video.last?["gop-jitter-seconds"] == .double(0))
        #expect(video.last?["total-frames"] == .int(150))
        #expect(audio.last?["codec"] == .string("mp4a.40.2"))
        #expect(events.allSatisfy { $0["gaps"] == .int(0) })
    }

    @Test func gapsInMediaTime_areCounted() {
        var track = TrackStatistics(track: 1)
        track.kind = "video"
        track.timescale = 1000
        track.add(dts: 0, pts: 0, duration: 40, size: 1, keyframe: true, arrival: 0)
        track.add(dts: 40, pts: 40, duration: 40, size: 1, keyframe: false, arrival: 40_000_000)
        track.add(dts: 500, pts: 500, duration: 40, size: 1, keyframe: false, arrival: 500_000_000)
        #expect(track.gaps == 1)
        #expect(abs(track.gapSeconds - 0.42) < 1e-9)
        #expect(abs(track.driftMilliseconds) < 1e-6, "arrival kept pace with media time")
    }
}
