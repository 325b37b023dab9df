import CamflowTesting
import Foundation
import Testing

/// `camflow sim` beside an RTSP server: the shipped pipelines keep the
/// simulator off 8554, the port RTSP clients try first.
@Suite struct SimRTSPPortTests {
    /// Every shipped file that names a simulator (`ws://…:PORT/ws`) names one
    /// off 8554, so `rtsp` can bind its usual port beside the demo.
    @Test func shippedPipelinesAndScripts_keepTheSimulatorOffTheRTSPPort() throws {
        let root = repositoryRoot
        var files = ["README.md", "docs/custom-nodes.md", "scripts/demo.sh"].map { root.appendingPathComponent($0) }
        for dir in ["pipelines", "pipelines/graphs"] {
            let url = root.appendingPathComponent(dir)
            files += try FileManager.default.contentsOfDirectory(at: url, includingPropertiesForKeys: nil)
                .filter { $0.pathExtension == "yaml" }
        }
        try #require(files.count > 5)
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            for line in text.split(separator: "\n") {
                let simulator = line.contains("ws://") || line.contains("camflow sim")
                #expect(!(simulator && line.contains(":8554")) && !(line.contains("camflow sim") && line.contains("--port 8554")),
                        "\(file.lastPathComponent): \(line)")
            }
        }
    }
}

/// `camflow sim --rtsp-port`: the simulator's cameras over RTSP, read by ffprobe.
@Suite struct SimRTSPTests {
    /// The simulator with an ephemeral RTSP port: its camera line carries both URLs.
    func startSimulator(_ arguments: [String] = []) async throws -> (CamflowProcess, webSocket: String, rtsp: String) {
        let sim = try CamflowProcess(["sim", "--port", "0", "--rtsp-port", "0"] + arguments)
        try await sim.waitForLine(timeout: .seconds(30)) { $0.hasPrefix("camera 1: ") }
        let line = try #require(sim.stdout.split(separator: "\n").first { $0.hasPrefix("camera 1: ") })
        let urls = line.dropFirst("camera 1: ".count).split(separator: " ").map(String.init)
        try #require(urls.count == 2, "\(line)")
        return (sim, urls[0], urls[1])
    }

    @Test func ffprobe_readsCodecAndSize_overTCP() async throws {
        let (sim, webSocket, rtsp) = try await startSimulator()
        defer { sim.process.terminate() }
        #expect(webSocket.hasPrefix("ws://127.0.0.1:") && webSocket.hasSuffix("/ws"))
        #expect(rtsp.hasPrefix("rtsp://127.0.0.1:") && rtsp.hasSuffix("/camera1"), "\(rtsp)")
        let authenticated = rtsp.replacingOccurrences(of: "rtsp://", with: "rtsp://admin:instar@")
        // timeout(1) bounds a server that never answers; -timeout bounds each socket wait.
        let probe = try await runTool("/usr/bin/timeout", ["30", "/usr/bin/ffprobe", "-v", "error", "-rtsp_transport", "tcp",
                                                           "-timeout", "10000000", "-analyzeduration", "1000000",
                                                           "-show_entries", "stream=codec_name,width,height",
                                                           "-of", "compact", authenticated])
        #expect(probe.status == 0, "\(probe.stderr)\n\(sim.stderr)")
        #expect(probe.stdout.contains("codec_name=h264|width=640|height=360"), "\(probe.stdout)")
        #expect(probe.stdout.contains("codec_name=aac"), "\(probe.stdout)")
        #expect(!probe.stderr.contains("instar"))
    }

    @Test func withoutCredentials_theRTSPStreamIsRefused() async throws {
        let (sim, _, rtsp) = try await startSimulator()
        defer { sim.process.terminate() }
        let probe = try await runTool("/usr/bin/timeout", ["30", "/usr/bin/ffprobe", "-v", "error", "-rtsp_transport", "tcp",
                                                           "-timeout", "10000000", "-show_entries", "stream=codec_name", rtsp])
        #expect(probe.status != 0)
        #expect(probe.stderr.contains("401"), "\(probe.stderr)")
    }
}

/// pipelines/rtsp-gateway.yaml against the simulator: its INSTAR camera in by
/// WebSocket, the same camera in again by RTSP, both recorded and served on.
@Suite struct RTSPGatewayPipelineTests {
    @Test func gateway_servesBothCamerasOverRTSP_andRecordsThem() async throws {
        let (sim, webSocket, rtsp) = try await SimRTSPTests().startSimulator()
        defer { sim.process.terminate() }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-gateway-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let run = try CamflowProcess(["run", repositoryRoot.appendingPathComponent("pipelines/rtsp-gateway.yaml").path],
                                     environment: ["FRONT_URL": webSocket, "YARD_URL": rtsp, "RTSP_BIND": "127.0.0.1:0",
                                                   "WEB_BIND": "127.0.0.1:0"],
                                     directory: scratch)
        defer { run.process.terminate() }
        // The node says where it serves each stream once the stream's first packets came.
        for stream in ["front", "yard"] {
            try await run.waitForLine(timeout: .seconds(30), inStderr: true) { $0.contains("serving rtsp://127.0.0.1:") && $0.hasSuffix("/\(stream)") }
        }
        let line = try #require(run.stderr.split(separator: "\n").first { $0.contains("serving rtsp://127.0.0.1:") && $0.hasSuffix("/yard") })
        let url = try #require(line.split(separator: " ").last.map(String.init))
        for stream in ["front", "yard"] {
            let probe = try await runTool("/usr/bin/timeout", ["30", "/usr/bin/ffprobe", "-v", "error", "-rtsp_transport", "tcp",
                                                               "-timeout", "10000000", "-analyzeduration", "1000000",
                                                               "-show_entries", "stream=codec_name,width,height", "-of", "compact",
                                                               url.replacingOccurrences(of: "/yard", with: "/\(stream)")])
            #expect(probe.status == 0, "\(stream): \(probe.stderr)")
            #expect(probe.stdout.contains("codec_name=h264|width=640|height=360"), "\(stream): \(probe.stdout)")
        }
        run.process.interrupt()
        #expect(try await run.waitForExit(timeout: .seconds(30)) == 0, "\(run.stderr)")
        for stream in ["front", "yard"] {
            let dir = scratch.appendingPathComponent("recordings/\(stream)")
            let files = FileManager.default.enumerator(atPath: dir.path)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".mp4") } ?? []
            #expect(!files.isEmpty, "no recording of \(stream)")
        }
    }
}

/// `camflow bench rtsp` runs its clients against the `rtsp` node and prints
/// a row per server: a short run on the built-in clip, GStreamer left out.
@Suite struct RTSPBenchSmokeTests {
    @Test func benchRTSP_printsARowForCamflow_whoseClientsReceivedTheStream() async throws {
        let clip = repositoryRoot.appendingPathComponent("Sources/InstarSimulator/Resources/camera.mp4").path
        let bench = try CamflowProcess(["bench", "rtsp", "--servers", "camflow", "--clients", "2", "--seconds", "2", "--warmup", "1",
                                        "--media", clip])
        #expect(try await bench.waitForExit(timeout: .seconds(90)) == 0, "\(bench.stderr)")
        let row = try #require(bench.stdout.split(separator: "\n").first { $0.hasPrefix("2 ") && $0.contains(" camflow ") }, "\(bench.stdout)")
        // clients server CPU% CPU%/client RSS MiB/s/client min starved bench-CPU%
        let cells = row.split(separator: " ")
        try #require(cells.count == 9, "\(row)")
        #expect((Double(cells[6]) ?? 0) > 0, "a client received nothing: \(row)")
        #expect((Double(cells[4]) ?? 0) > 0, "no RSS read from /proc: \(row)")
    }
}
