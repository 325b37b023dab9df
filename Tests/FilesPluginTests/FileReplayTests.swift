import CamflowTesting
import Camflow
import FilesPlugin
import Foundation
import NIOCore
import Testing

@Suite struct FileReplayTests {
    let harness = TestHarness(plugins: [FilesPlugin.self])

    /// A file of `size` pseudo-random bytes in a fresh temporary directory.
    func makeFile(size: Int) throws -> (path: String, bytes: [UInt8]) {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("input.bin").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return (path, bytes)
    }

    @Test func emitsTheWholeFileInChunksOfChunkSize() async throws {
        let file = try makeFile(size: 300_000)
        let run = try await harness.run([
            NodeSpec(id: "replay", type: "file-replay",
                     options: ["path": .scalar(file.path), "chunk-size": "64KiB"]),
        ], collect: ["replay"])
        let packets = run.packets["replay"] ?? []
        #expect(packets.map(\.payload.readableBytes) == [65536, 65536, 65536, 65536, 37856])
        #expect(packets.map(\.sequence) == [0, 1, 2, 3, 4])
        #expect(packets.allSatisfy { $0.kind == .bytes && $0.stream == "replay" && !$0.discontinuity })
        let joined = packets.flatMap { Array($0.payload.readableBytesView) }
        #expect(joined == file.bytes)
    }

    @Test func loop_restartsAtTheStartAndFlagsADiscontinuity() async throws {
        let file = try makeFile(size: 1000)
        let run = try await harness.run([
            NodeSpec(id: "replay", type: "file-replay",
                     options: ["path": .scalar(file.path), "chunk-size": "400", "loop": "true"]),
        ], collect: ["replay"], stopWhen: { ($0["replay"]?.count ?? 0) >= 7 })
        let packets = run.packets["replay"] ?? []
        #expect(packets.count >= 7)
        #expect(Array(packets.prefix(7).map(\.payload.readableBytes)) == [400, 400, 200, 400, 400, 200, 400])
        #expect(Array(packets.prefix(7).map(\.discontinuity)) == [false, false, false, true, false, false, true])
    }

    @Test func rate_pacesTheOutput() async throws {
        let file = try makeFile(size: 40_000)
        let clock = ContinuousClock()
        let start = clock.now
        _ = try await harness.run([
            NodeSpec(id: "replay", type: "file-replay",
                     options: ["path": .scalar(file.path), "chunk-size": "10KB", "rate": "100KB/s"]),
        ], collect: ["replay"])
        // Four chunks at 100 kB/s: the last may go 300 ms after the first.
        #expect(clock.now - start >= .milliseconds(290))
    }

    @Test func missingFile_failsWithThePathAndReason() async throws {
        do {
            _ = try await harness.run([
                NodeSpec(id: "replay", type: "file-replay", options: ["path": "/nonexistent/clip.mp4"]),
            ], collect: ["replay"])
            Issue.record("expected a failure")
        } catch let failure as PipelineFailure {
            #expect(failure.description
                == "node 'replay' (file-replay) failed: cannot open '/nonexistent/clip.mp4': No such file or directory (errno 2)")
        }
    }

    @Test func validation_opensNoFile() throws {
        let spec = PipelineSpec(name: "t", nodes: [
            NodeSpec(id: "replay", type: "file-replay", options: ["path": "/nonexistent/clip.mp4"]),
            NodeSpec(id: "log", type: "null", inputs: ["replay"]),
        ])
        _ = try GraphValidator(registry: harness.registry).validate(spec)
    }
}

@Suite struct RealtimeReplayTests {
    @Test func realtime_sendsEachFragmentAtItsMediaTime() async throws {
        let path = fixtureDirectory.appendingPathComponent("h264-baseline.mp4").path
        let clock = ContinuousClock()
        let start = clock.now
        let run = try await TestHarness(plugins: [FilesPlugin.self]).run([
            NodeSpec(id: "replay", type: "file-replay", options: ["path": .scalar(path), "realtime": "true"]),
        ], collect: ["replay"])
        let elapsed = clock.now - start
        let packets = run.packets["replay"] ?? []
        // The init segment, then 3 fragments of 1 s, each sent once its media has passed: at 1 s, 2 s and 3 s.
        #expect(packets.count == 4)
        #expect(packets.dropFirst().allSatisfy { $0.payload.getString(at: $0.payload.readerIndex + 4, length: 4) == "moof" })
        #expect(elapsed >= .milliseconds(2900), "paced like a camera: \(elapsed)")
    }
}
