import Foundation
import Testing

/// `camflow sim` and `camflow run` as a user runs them: two processes, real sockets.
@Suite struct CameraEndToEndTests {
    /// Starts `camflow sim` and waits for its first camera's URL.
    func startSimulator(_ arguments: [String] = []) async throws -> (CamflowProcess, String) {
        let sim = try CamflowProcess(["sim", "--port", "0", "--speed", "10"] + arguments)
        try await sim.waitForOutput(lines: 1)
        let url = sim.stdout.split(separator: "\n").first { $0.hasPrefix("camera 1: ") }.map { String($0.dropFirst(10)) }
        return (sim, try #require(url))
    }

    @Test func demoPipeline_againstTheSimulator_logsKeyframesAndStats() async throws {
        let (sim, url) = try await startSimulator()
        defer { sim.process.terminate() }
        // The demo records under ./recordings: run it elsewhere than in the repository.
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-demo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let run = try CamflowProcess(["run", repositoryRoot.appendingPathComponent("pipelines/demo.yaml").path],
                                     environment: ["CAMERA_URL": url, "WEB_BIND": "127.0.0.1:0", "ZMQ_ENDPOINT": "tcp://127.0.0.1:*"], directory: scratch)
        try await run.waitForOutput(lines: 8)
        run.process.interrupt()
        let status = try await run.waitForExit(timeout: .seconds(30))
        #expect(status == 0, "\(run.stderr)")
        let lines = run.stdout.split(separator: "\n")
        #expect(lines.contains { $0.hasPrefix("camera event") && $0.contains(" connected url=\(url)") })
        #expect(lines.contains { $0.contains(" keyframe track=1 ") })
        #expect(summaryRow(run.stderr, node: "camera") != nil)
    }

    @Test func wrongPassword_isAnErrorLine_andNeverPrinted() async throws {
        let (sim, url) = try await startSimulator()
        defer { sim.process.terminate() }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-demo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let run = try CamflowProcess(["run", repositoryRoot.appendingPathComponent("pipelines/demo.yaml").path, "--for", "2s"],
                                     environment: ["CAMERA_URL": url, "CAMERA_PASSWORD": "hunter2-secret", "WEB_BIND": "127.0.0.1:0",
                                                   "ZMQ_ENDPOINT": "tcp://127.0.0.1:*"],
                                     directory: scratch)
        let status = try await run.waitForExit(timeout: .seconds(30))
        #expect(status == 0)
        #expect(run.stderr.contains("refused the credentials (HTTP 401)"))
        #expect(run.stdout.contains("auth-failed status=401"))
        #expect(!(run.stdout + run.stderr).contains("hunter2-secret"))
    }

    @Test func graphAndValidate_neverShowThePassword() async throws {
        let environment = ["INSTAR_URL": "ws://admin:url-secret@192.0.2.10/ws", "INSTAR_PASSWORD": "env-secret"]
        let graph = try await camflow("graph", "pipelines/instar.yaml", "--format", "dot", environment: environment)
        #expect(graph.status == 0, "\(graph.stderr)")
        #expect(graph.stdout.contains("\"camera\" -> \"buffer\""))
        let bad = try temporaryPipeline("""
            nodes:
              camera: { type: instar-camera, url: "ws://admin:literal-secret@cam/ws", channel: 14 }
              log: { type: log, inputs: [camera] }
            """)
        let validate = try await camflow("validate", bad)
        #expect(validate.status == 2)
        #expect(validate.stderr.contains("'channel' must be 11, 12 or 13"))
        for output in [graph.stdout, graph.stderr, validate.stdout, validate.stderr] {
            #expect(!output.contains("secret"), "\(output)")
        }
    }
}

@Suite struct MultiCameraEndToEndTests {
    @Test func threeIngestInstances_ofOneComposite_allRun() async throws {
        let sim = try CamflowProcess(["sim", "--port", "0", "--speed", "10", "--cameras", "3"])
        defer { sim.process.terminate() }
        try await sim.waitForOutput(lines: 3)
        let urls = sim.stdout.split(separator: "\n").filter { $0.hasPrefix("camera ") }.map { String($0.split(separator: " ")[2]) }
        try #require(urls.count == 3)
        let run = try CamflowProcess(["run", "pipelines/multi-camera.yaml"],
                                     environment: ["FRONT_URL": urls[0], "BACK_URL": urls[1], "YARD_URL": urls[2]])
        for stream in ["front", "back", "yard"] {
            try await run.waitForLine { $0.hasPrefix("\(stream) event ") && $0.contains(" stats track=1 kind=video") }
        }
        run.process.interrupt()
        #expect(try await run.waitForExit() == 0, "\(run.stderr)")
        let graph = try await camflow("graph", "pipelines/multi-camera.yaml", "--format", "dot")
        #expect(graph.stdout.contains("subgraph \"cluster_front\""))
        #expect(graph.stdout.contains("\"front.keyframes\" -> \"stats\""))
    }
}
