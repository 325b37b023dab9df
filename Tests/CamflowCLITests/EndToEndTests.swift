import CamflowTesting
import Foundation
import Testing

/// The real `camflow` binary: exit codes, runs, and a graceful stop by signal.
@Suite struct EndToEndTests {
    @Test func validate_acceptsTheShippedPipelines() async throws {
        let result = try await camflow("validate", "pipelines/replay.yaml")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("pipelines/replay.yaml: ok"))
    }

    @Test func validate_invalidFile_exits2_withFileLineAndColumn() async throws {
        let path = try temporaryPipeline("""
            nodes:
              replay: { type: file-replay, path: x.mp4 }
              log: { type: lgo, inputs: [replay] }
            """)
        let result = try await camflow("validate", path)
        #expect(result.status == 2)
        #expect(result.stderr.contains("\(path):3:16: error: unknown node type 'lgo' (node 'log'); did you mean 'log'?"))
    }

    @Test func missingPipelineFile_exits2() async throws {
        let result = try await camflow("run", "/nonexistent/pipeline.yaml")
        #expect(result.status == 2)
        #expect(result.stderr.contains("cannot read pipeline file '/nonexistent/pipeline.yaml'"))
    }

    @Test func usageError_exits64() async throws {
        let result = try await camflow("run")
        #expect(result.status == 64)
    }

    @Test func failingNode_exits1_andNamesIt() async throws {
        let path = try temporaryPipeline("""
            nodes:
              replay: { type: file-replay, path: /nonexistent/clip.mp4 }
              sink: { type: null, inputs: [replay] }
            """)
        let result = try await camflow("run", path)
        #expect(result.status == 1)
        #expect(result.stderr.contains("node 'replay' (file-replay) failed: cannot open '/nonexistent/clip.mp4'"))
    }

    @Test func replayPipeline_logsFragmentsKeyframesAndStats() async throws {
        let result = try await camflow("run", "pipelines/replay.yaml")
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.filter { $0.hasPrefix("replay init ") }.count == 1)
        #expect(lines.filter { $0.hasPrefix("replay fragment ") }.count == 3)
        let keyframes = lines.filter { $0.contains(" keyframe track=1 ") && $0.hasPrefix("replay event ") }
        #expect(keyframes.count == 3)
        #expect(keyframes.last?.contains("gop-frames=50 gop-seconds=2") == true)
        let stats = lines.filter { $0.contains(" stats track=") }
        #expect(stats.contains { $0.contains("kind=video codec=avc1.4D4033 resolution=640x360") && $0.contains("fps=25 ") })
        #expect(stats.contains { $0.contains("kind=audio codec=mp4a.40.2") })
    }

    @Test func sigint_stopsGracefully_exits0_andLosesNothing() async throws {
        let path = try temporaryPipeline("""
            nodes:
              replay:
                type: file-replay
                path: \(repositoryRoot.path)/Tests/Fixtures/h264-main-aac.mp4
                chunk-size: 1KiB
                loop: true
                rate: 2MiB/s
              buffer: { type: queue, inputs: [replay], max-packets: 4096 }
              log: { type: log, inputs: [buffer] }
            """)
        let process = try CamflowProcess(["run", path])
        try await process.waitForOutput(lines: 200)
        process.process.interrupt()
        let status = try await process.waitForExit(timeout: .seconds(30))
        #expect(status == 0, "\(process.stderr)")
        let printed = process.stdout.split(separator: "\n").count
        let replay = summaryRow(process.stderr, node: "replay")
        let log = summaryRow(process.stderr, node: "log")
        #expect(replay != nil && log != nil, "summary missing:\n\(process.stderr)")
        #expect(replay?.packetsOut == printed, "packets emitted = lines printed")
        #expect(log?.packetsIn == printed)
        #expect(summaryRow(process.stderr, node: "buffer")?.dropped == 0)
    }

    @Test func statusTable_isPrintedOnATerminalOnly() async throws {
        let path = try temporaryPipeline("""
            nodes:
              replay: { type: file-replay, path: \(repositoryRoot.path)/Tests/Fixtures/h264-main-aac.mp4, loop: true, rate: 1MiB/s }
              sink: { type: null, inputs: [replay] }
            """)
        let arguments = ["run", path, "--status-interval", "200ms", "--for", "1500ms"]
        // script(1) gives the command a pseudo-terminal.
        let command = ([camflowBinary] + arguments).map { "'\($0)'" }.joined(separator: " ")
        let onTerminal = try await runTool("/usr/bin/script", ["-qfec", command, "/dev/null"])
        // A terminal ends lines with \r\n.
        let tables = onTerminal.stdout.replacingOccurrences(of: "\r", with: "").components(separatedBy: "\nnode ").count - 1
        #expect(onTerminal.status == 0)
        #expect(tables >= 3, "a status table every 200 ms, then the summary: \(tables) tables")
        let piped = try await camflow("run", path, "--status-interval", "200ms", "--for", "1500ms")
        #expect(piped.status == 0)
        #expect(piped.stderr.components(separatedBy: "\nnode ").count - 1 == 1, "only the summary when stderr is a pipe")
    }
}
