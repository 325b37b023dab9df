import CamflowTesting
import Camflow
import FilesPlugin
import MP4Plugin
@testable import RateLimitPlugin
import Testing

@Suite struct RateLimiterTests {
    @Test func keyframesAlwaysPass_andAGOPIsCutOnlyAtItsEnd() {
        var limiter = RateLimiter(fps: 5)
        // 25 fps, a keyframe every 50 frames: a GOP starts with a full bucket of 5, which refills
        // by 0.2 per frame while it is spent: 6 frames pass, then the GOP is cut.
        var passed: [Int] = []
        for frame in 0..<100 where limiter.admit(time: Double(frame) / 25, keyframe: frame % 50 == 0) {
            passed.append(frame)
        }
        #expect(passed == [0, 1, 2, 3, 4, 5, 50, 51, 52, 53, 54, 55], "a keyframe and the frames right after it")
        #expect(Double(passed.count) / 4.0 <= 5, "at most 5 frames per second over the 4 s")
    }

    @Test func aSlowSourcePassesWhole() {
        var limiter = RateLimiter(fps: 30)
        let passed = (0..<50).filter { limiter.admit(time: Double($0) / 10, keyframe: $0 % 10 == 0) }
        #expect(passed.count == 50)
    }
}

@Suite struct RateLimitNodeTests {
    @Test func limitsTheCameraClip_andEveryPassedGOPIsAPrefix() async throws {
        let run = try await TestHarness(plugins: [FilesPlugin.self, MP4Plugin.self, RateLimitPlugin.self]).run([
            NodeSpec(id: "cam", type: "file-replay", options: ["path": .scalar(repositoryFile("Tests/Fixtures/h264-main-aac.mp4").path)]),
            NodeSpec(id: "parse", type: "mp4-parse", inputs: ["cam"], options: ["emit": ["init", "frame"]]),
            NodeSpec(id: "limit", type: "rate-limit", inputs: ["parse"], options: ["fps": "5", "drop-audio": "true"]),
        ], collect: ["limit"])
        let frames = (run.packets["limit"] ?? []).filter { $0.kind == .frame }
        #expect(frames.allSatisfy { $0.media?.codec?.hasPrefix("avc1") == true }, "audio dropped")
        // 6 s at 25 fps with a keyframe every 2 s: 3 GOPs of a keyframe and the 5 frames after it.
        #expect(frames.count == 18)
        let dts = frames.compactMap { $0.media?.dts }
        let frameTicks: Int64 = 512  // 12800 / 25
        for gop in 0..<3 {
            let start = Int64(gop) * 50 * frameTicks
            #expect(Array(dts[(gop * 6)..<(gop * 6 + 6)]) == (0..<6).map { start + Int64($0) * frameTicks },
                    "GOP \(gop): its keyframe and the 5 frames right after it, in decode order")
        }
        #expect(frames.filter(\.isKeyframe).count == 3)
        #expect((run.packets["limit"] ?? []).first?.kind == .initSegment, "other packets pass")
    }

    @Test func fpsMustBePositive() throws {
        let spec = PipelineSpec(name: "t", nodes: [
            NodeSpec(id: "cam", type: "file-replay", options: ["path": "x.mp4"]),
            NodeSpec(id: "parse", type: "mp4-parse", inputs: ["cam"], options: ["frames": "true"]),
            NodeSpec(id: "limit", type: "rate-limit", inputs: ["parse"], options: ["fps": "0"]),
            NodeSpec(id: "sink", type: "null", inputs: ["limit"]),
        ])
        let registry = NodeRegistry(plugins: [FilesPlugin.self, MP4Plugin.self, RateLimitPlugin.self])
        #expect(throws: ConfigErrors.self) { try GraphValidator(registry: registry).validate(spec) }
    }
}
