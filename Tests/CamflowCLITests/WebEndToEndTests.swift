import CamflowTesting
import Camflow
import Foundation
import ISOBMFF
import Logging
import NIOCore
import Testing
import WSClient
#if canImport(Glibc)
import Glibc
#endif

/// The `web` sink as users meet it: `camflow run` serving a simulated
/// camera to a real headless Chromium, to camera-protocol WebSocket
/// clients, to Prometheus and to curl-like HTTP requests.
@Suite struct WebEndToEndTests {
    /// Where screenshots of the pages go (kept after the run, not committed).
    static let artifacts = repositoryRoot.appendingPathComponent(".build/test-artifacts")

    /// `camflow sim` plus `camflow run` of a camera → mp4-parse → web
    /// pipeline; returns both processes and the web port.
    func startWeb(simArguments: [String] = [], webOptions: String = "", extraNodes: String = "", scheme: String = "http",
                  chainedWebInput: String = "parse")
        async throws -> (sim: CamflowProcess, run: CamflowProcess, port: Int)
    {
        let sim = try CamflowProcess(["sim", "--port", "0"] + simArguments)
        try await sim.waitForLine { $0.hasPrefix("camera 1: ") }
        let url = try #require(sim.stdout.split(separator: "\n").first { $0.hasPrefix("camera 1: ") }).dropFirst(10)
        let pipeline = try temporaryPipeline("""
            name: web-test
            nodes:
              camera: { type: instar-camera, url: "\(url)", username: admin, password: instar }
              parse: { type: mp4-parse, inputs: [camera] }
              web: { type: web, inputs: [\(chainedWebInput)], bind: "127.0.0.1:0"\(webOptions) }
            \(extraNodes)
            """)
        let run = try CamflowProcess(["run", pipeline, "--status-interval", "0"])
        let serving = "serving \(scheme)://127.0.0.1:"
        try await run.waitForLine(timeout: .seconds(60), inStderr: true) { $0.contains(serving) }
        let line = try #require(run.stderr.split(separator: "\n").first { $0.contains(serving) })
        let port = try #require(line.split(separator: serving).last?.prefix { $0.isNumber }).description
        return (sim, run, try #require(Int(port)))
    }

    // MARK: Browser

    @Test func viewerPage_playsTheCamera_inHeadlessChromium() async throws {
        let (sim, run, port) = try await startWeb()
        defer { sim.process.terminate(); run.process.terminate() }
        let screenshot = Self.artifacts.appendingPathComponent("viewer.png").path
        let result = try await browserCheck(["viewer", "http://127.0.0.1:\(port)/viewer?autostart=1",
                                             "--screenshot", screenshot, "--play", "2.5"])
        let played = try #require(result["played"] as? Double)
        #expect(played >= 2.0, "\(result)")
        // The simulator's clip is 640x360 H.264 main + AAC; the MSE type came from its init segment.
        #expect(result["videoWidth"] as? Int == 640)
        #expect(result["videoHeight"] as? Int == 360)
        #expect((result["codecs"] as? String)?.contains("avc1.4D4033, mp4a.40.2") == true, "\(result)")
        #expect((result["badge"] as? String)?.hasPrefix("connected") == true)
        #expect((result["consoleErrors"] as? [String])?.isEmpty == true, "\(result)")
        #expect((result["pageErrors"] as? [String])?.isEmpty == true, "\(result)")
        #expect(FileManager.default.fileExists(atPath: screenshot))
    }

    @Test func dashboard_showsALiveTile_andThePipelineGraph() async throws {
        let (sim, run, port) = try await startWeb()
        defer { sim.process.terminate(); run.process.terminate() }
        let screenshot = Self.artifacts.appendingPathComponent("dashboard.png").path
        let result = try await browserCheck(["dashboard", "http://127.0.0.1:\(port)/", "--screenshot", screenshot,
                                             "--play", "1.5"])
        let tiles = try #require(result["tiles"] as? [[String: Any]])
        #expect(tiles.count == 1)
        #expect(tiles.first?["name"] as? String == "camera")
        #expect((tiles.first?["played"] as? Double ?? 0) >= 1.5, "\(result)")
        #expect(tiles.first?["videoWidth"] as? Int == 640)
        #expect(result["graphNodes"] as? [String] == ["camera", "parse", "web"])
        #expect(result["graphEdges"] as? Int == 2)
        #expect(result["ready"] as? String == "ready")
        #expect((result["consoleErrors"] as? [String])?.isEmpty == true, "\(result)")
        #expect(FileManager.default.fileExists(atPath: screenshot))
    }

    @Test func dashboard_fitsATwentyNodeGraph_at1400Pixels() async throws {
        // A chain of 17 queues between the parser and the sink: 20 nodes, 20 layers deep.
        let queues = (1...17).map { "  q\($0): { type: queue, inputs: [\($0 == 1 ? "parse" : "q\($0 - 1)")] }" }.joined(separator: "\n")
        let (sim, run, port) = try await startWeb(webOptions: "", extraNodes: queues, chainedWebInput: "q17")
        defer { sim.process.terminate(); run.process.terminate() }
        let screenshot = Self.artifacts.appendingPathComponent("dashboard-20-nodes.png").path
        let result = try await browserCheck(["dashboard", "http://127.0.0.1:\(port)/", "--screenshot", screenshot,
                                             "--play", "0.5", "--width", "1400"])
        #expect((result["graphNodes"] as? [String])?.count == 20, "\(result)")
        let width = try #require(result["pageWidth"] as? Double)
        #expect(result["scrollWidth"] as? Double ?? .infinity <= width, "no horizontal scrolling: \(result)")
        let boxes = try #require(result["nodeBoxes"] as? [[String: Double]])
        #expect(boxes.count == 20)
        #expect(boxes.allSatisfy { $0["left"] ?? -1 >= 0 && $0["right"] ?? .infinity <= width }, "every node on the page: \(boxes)")
        #expect(boxes.allSatisfy { $0["width"] ?? 0 >= 150 }, "drawn at a legible size, not shrunk: \(boxes)")
    }

    @Test func viewerPage_saysSo_whenTheBrowserCannotPlayTheCodec() async throws {
        // Chromium on Debian plays H.264, not H.265: the page must say so, not stay black.
        let pipeline = try temporaryPipeline("""
            nodes:
              replay: { type: file-replay, path: "\(repositoryRoot.path)/Tests/Fixtures/h265.mp4", realtime: true, loop: true }
              parse: { type: mp4-parse, inputs: [replay] }
              web: { type: web, inputs: [parse], bind: "127.0.0.1:0" }
            """)
        let run = try CamflowProcess(["run", pipeline, "--status-interval", "0"])
        defer { run.process.terminate() }
        try await run.waitForLine(timeout: .seconds(60), inStderr: true) { $0.contains("serving http://127.0.0.1:") }
        let line = try #require(run.stderr.split(separator: "\n").first { $0.contains("serving http://127.0.0.1:") })
        let port = try #require(line.split(separator: "serving http://127.0.0.1:").last?.prefix { $0.isNumber })
        let result = try await browserCheck(["viewer", "http://127.0.0.1:\(port)/viewer?autostart=1", "--screenshot",
                                             Self.artifacts.appendingPathComponent("viewer-hevc.png").path])
        let errors = try #require(result["pageErrors"] as? [String])
        #expect(errors.contains { $0.contains("cannot play") && $0.contains("hev1") }, "\(result)")
        #expect(result["played"] as? Double == 0)
    }

    /// Runs Tests/Browser/browser_check.py with Debian's python3 and returns its JSON.
    func browserCheck(_ arguments: [String]) async throws -> [String: Any] {
        let script = repositoryRoot.appendingPathComponent("Tests/Browser/browser_check.py").path
        let check = try CamflowProcess([script] + arguments + ["--timeout", "60"], executable: "/usr/bin/python3")
        let status = try await check.waitForExit(timeout: .seconds(120))
        #expect(status == 0, "\(check.stderr)")
        let data = Data(check.stdout.utf8)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any], "\(check.stdout) \(check.stderr)")
    }

    // MARK: HTTP

    @Test func metrics_parseAsPrometheusText_andMoveWithTraffic() async throws {
        let (sim, run, port) = try await startWeb(simArguments: ["--speed", "4"])
        defer { sim.process.terminate(); run.process.terminate() }
        let key = "camflow_node_packets_in_total{node=web,pipeline=web-test,type=web}"
        let first = try await prometheusSample(port: port, key)
        var second = first
        try await waitUntil("the web node's counter moves", timeout: .seconds(30)) {
            second = (try? await prometheusSampleNow(port: port, key)) ?? first
            return second > first
        }
        #expect(second > first)
        let families = try await browserCheck(["metrics", "http://127.0.0.1:\(port)/metrics"])
        let samples = try #require(families["samples"] as? [String: Double])
        // Every engine counter and gauge, per node and per edge.
        for name in ["camflow_node_packets_out_total{node=camera,pipeline=web-test,type=instar-camera}",
                     "camflow_node_bytes_in_total{node=parse,pipeline=web-test,type=mp4-parse}",
                     "camflow_edge_packets_total{from=parse,pipeline=web-test,to=web}",
                     "camflow_edge_depth{from=camera,pipeline=web-test,to=parse}",
                     "camflow_edge_capacity{from=parse,pipeline=web-test,to=web}"] {
            #expect(samples[name] != nil, "\(name) missing from \(samples.keys.sorted())")
        }
        #expect((families["types"] as? [String])?.contains("gauge") == true)
    }

    func prometheusSample(port: Int, _ key: String) async throws -> Double {
        var value: Double?
        try await waitUntil("\(key) appears in /metrics", timeout: .seconds(30)) {
            value = try? await prometheusSampleNow(port: port, key)
            return value != nil
        }
        return try #require(value)
    }

    /// One sample read with the Prometheus client's own parser.
    func prometheusSampleNow(port: Int, _ key: String) async throws -> Double? {
        let script = repositoryRoot.appendingPathComponent("Tests/Browser/browser_check.py").path
        let result = try await runTool("/usr/bin/python3", [script, "metrics", "http://127.0.0.1:\(port)/metrics"])
        guard result.status == 0,
              let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any],
              let samples = json["samples"] as? [String: Double] else { return nil }
        return samples[key]
    }

    @Test func healthAndReadiness_followTheCameraConnection() async throws {
        let (sim, run, port) = try await startWeb()
        defer { run.process.terminate() }
        #expect(try await rawHTTP(port: port, "/healthz").status == 200)
        try await waitUntil("ready", timeout: .seconds(30)) { (try? await rawHTTP(port: port, "/readyz").status) == 200 }
        let stats = try await rawHTTP(port: port, "/api/stats")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(stats.body.utf8)) as? [String: Any])
        #expect(json["ready"] as? Bool == true)
        #expect((json["nodes"] as? [[String: Any]])?.map { $0["id"] as? String } == ["camera", "parse", "web"])
        // The camera goes away: not ready, and the reason names it.
        sim.process.terminate()
        try await waitUntil("not ready", timeout: .seconds(30)) { (try? await rawHTTP(port: port, "/readyz").status) == 503 }
        #expect(try await rawHTTP(port: port, "/readyz").body.contains("waiting for camera"))
        #expect(try await rawHTTP(port: port, "/healthz").status == 200)
    }

    @Test func credentials_401Everywhere_withoutThem() async throws {
        let (sim, run, port) = try await startWeb(webOptions: ", username: viewer, password: \"web-secret\"")
        defer { sim.process.terminate(); run.process.terminate() }
        let good = "Basic " + Data("viewer:web-secret".utf8).base64EncodedString()
        let bad = "Basic " + Data("viewer:wrong".utf8).base64EncodedString()
        for (index, path) in ["/", "/viewer", "/assets/camflow-player.js", "/api/stats", "/metrics", "/healthz", "/readyz",
                     "/hls/camera/index.m3u8", "/hls/camera/init-1.mp4", "/snapshot/camera.jpg", "/recordings",
                     "/api/recordings", "/api/recordings/camera/clip.mp4?start=0&duration=1"].enumerated() {
            let refused = try await rawHTTP(port: port, path)
            #expect(refused.status == 401, "\(path)")
            #expect(refused.head.lowercased().contains("www-authenticate: basic"), "\(path)")
            // Ten wrong passwords a minute lock the address out (WebHardeningEndToEndTests): eight here.
            if index % 2 == 0 {
                #expect(try await rawHTTP(port: port, path, authorization: bad).status == 401, "\(path)")
            }
            #expect(try await rawHTTP(port: port, path, authorization: good).status != 401, "\(path)")
        }
        for path in ["/ws", "/ws/camera"] {
            let refused = try await rawHTTP(port: port, path, upgrade: true)
            #expect(refused.status == 401, "\(path): \(refused.head)")
            #expect(refused.head.lowercased().contains("www-authenticate: basic"))
            #expect(try await rawHTTP(port: port, path, authorization: good, upgrade: true).status == 101, "\(path)")
        }
        #expect(!(run.stdout + run.stderr).contains("web-secret"))
    }

    @Test func aPortInUse_failsTheRun_atOnce_sayingWhich() async throws {
        let (sim, run, port) = try await startWeb()
        defer { sim.process.terminate(); run.process.terminate() }
        let second = try temporaryPipeline("""
            nodes:
              replay: { type: file-replay, path: Tests/Fixtures/h264-main-aac.mp4, loop: true }
              parse: { type: mp4-parse, inputs: [replay] }
              web: { type: web, inputs: [parse], bind: "127.0.0.1:\(port)" }
            """)
        let result = try await camflow("run", second, "--status-interval", "0")
        #expect(result.status == 1)
        #expect(result.stderr.contains("node 'web' (web) failed: cannot serve on 127.0.0.1:\(port)"), "\(result.stderr)")
        #expect(result.stderr.contains("Address already in use"))
    }

    // MARK: Camera protocol

    @Test func tenViewers_getTheStream_andASlowOneLosesWholeGOPs() async throws {
        // A denser clip than the default one, so a stalled viewer falls
        // behind in seconds: 1280x720 at ~4 Mbit/s, a keyframe every second,
        // two fragments per GOP.
        let media = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-web-\(UUID().uuidString).mp4").path
        let encode = try await runTool("/usr/bin/ffmpeg", [
            "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25", "-t", "4",
            "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "4M", "-g", "25", "-keyint_min", "25",
            "-sc_threshold", "0", "-movflags", "frag_keyframe+empty_moov+default_base_moof",
            "-frag_duration", "500000", media])
        try #require(encode.status == 0, "\(encode.stderr)")
        // The slow viewer says nothing after asking for the stream: on a busy
        // host the waits below can outlast the 60 s idle close, which would
        // take it (and its drop count) out of /api/stats.
        let (sim, run, port) = try await startWeb(simArguments: ["--media", media, "--speed", "4"],
                                                  webOptions: ", viewer-queue: 1MiB, idle-timeout: 10m")
        defer { sim.process.terminate(); run.process.terminate() }

        // The slow viewer is a plain socket with a small receive buffer that
        // reads nothing for a while (a client library would keep reading).
        let slowViewer = try await SlowViewer.connect(port: port)
        let viewers = (0..<9).map { _ in ViewerRecorder() }
        let tasks = viewers.map { viewer in Task { try await viewer.watch(port: port) } }
        defer { tasks.forEach { $0.cancel() } }
        // Enough for the fast ones to see several GOPs and for the slow
        // one's queue to overflow while it reads nothing.
        try await waitUntil("viewers see 25 fragments", timeout: .seconds(60)) {
            viewers.allSatisfy { $0.messageCount >= 25 }
        }
        try await waitUntil("the slow viewer loses GOPs", timeout: .seconds(60)) {
            (try? await droppedGOPs(port: port, viewer: 1)) ?? 0 >= 2
        }
        let slowMessages = try await slowViewer.readMessages(atLeast: 8)
        let stats = try await apiStats(port: port)
        run.process.terminate()
        for task in tasks { _ = try? await task.value }

        let streams = try viewers.map { try $0.parse() } + [try ViewerRecorder.parse(slowMessages)]
        for (index, stream) in streams.enumerated() {
            #expect(stream.initSegments >= 1, "viewer \(index)")
            #expect(stream.fragments.first?.startsWithKeyframe == true, "viewer \(index) starts mid-GOP")
        }
        // The nine: every fragment, in order, sequence numbers without a gap.
        for (index, stream) in streams.prefix(9).enumerated() {
            let sequences = stream.fragments.map(\.sequence)
            #expect(sequences.count >= 24, "viewer \(index)")
            #expect(zip(sequences, sequences.dropFirst()).allSatisfy { $1 == $0 + 1 }, "viewer \(index): \(sequences)")
        }
        // The slow one: fragments the others got are missing, and whatever
        // follows a missing one starts with a keyframe: whole GOPs went, the
        // video stays decodable.
        let reference = streams[0].fragments.map(\.sequence)
        let slow = streams[9].fragments
        let received = Set(slow.map(\.sequence))
        let span = reference.filter { $0 <= (slow.last?.sequence ?? 0) }
        let missing = span.filter { !received.contains($0) }
        #expect(!missing.isEmpty, "slow viewer got \(slow.map(\.sequence)), the others \(reference)")
        for fragment in slow where missing.contains(fragment.sequence - 1) {
            #expect(fragment.startsWithKeyframe, "fragment \(fragment.sequence) follows a gap mid-GOP")
        }
        // The counters say the same: only the slow viewer (id 1) dropped.
        let perViewer = try #require(stats["viewers"] as? [[String: Any]])
        #expect(perViewer.count == 10)
        for viewer in perViewer {
            let dropped = viewer["droppedGOPs"] as? Int ?? -1
            #expect(viewer["id"] as? Int == 1 ? dropped >= 2 : dropped == 0, "\(viewer)")
        }
    }

    @Test func cameraProtocol_commandsErrorsAndIdleTimeout() async throws {
        let (sim, run, port) = try await startWeb(simArguments: ["--speed", "10"], webOptions: ", idle-timeout: 1500ms")
        defer { sim.process.terminate(); run.process.terminate() }
        let messages = MessageLog()
        let started = ContinuousClock.now
        // Without the idle close the connection would stay open: end it then,
        // and the checks below fail instead of the test hanging.
        let watchdog = Task {
            try await Task.sleep(for: .seconds(30))
            run.process.terminate()
        }
        defer { watchdog.cancel() }
        try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/ws", configuration: .init(maxFrameSize: 16 << 20),
                                          logger: Logger(label: "test")) { inbound, outbound, _ in
            try await outbound.write(.text("hello camera"))
            try await outbound.write(.text("livestream/14"))
            try await outbound.write(.text("livestream/12"))
            var stopped = false
            for try await message in inbound.messages(maxSize: 16 << 20) {
                messages.append(message)
                if !stopped, messages.binaryCount >= 2 {
                    try await outbound.write(.text("keep-alive"))
                    try await outbound.write(.text("stop"))
                    stopped = true
                    messages.markStop()
                }
            }
        }
        // No more messages after stop (those in flight aside); then the server closed the silent client.
        let closed = ContinuousClock.now
        let elapsed = closed - started
        #expect(messages.texts.first == "error: unknown command 'hello camera'")
        #expect(messages.texts.contains("error: no channel 14; use 11, 12 or 13"))
        #expect(messages.binaryCount >= 2)
        // At 10x a fragment comes every 200 ms: a stream that went on after stop would fill
        // the 1.5 s until the idle close. However loaded the machine (fragments already
        // queued for this viewer still arrive), the stream fell silent long before the close.
        let silence = closed - (messages.lastBinaryAt ?? started)
        #expect(silence >= .milliseconds(700), "\(messages.binaryAfterStop) fragments after stop; the last \(silence) before the close")
        #expect(elapsed >= .milliseconds(1500) && elapsed < .seconds(30))
        #expect(run.stderr.contains("closed: no message for 1.5s"), "\(run.stderr)")
    }

    @Test(arguments: [false, true])
    func anotherCamflow_readsTheRestream_asACamera(overTLS: Bool) async throws {
        // With TLS: a certificate for 127.0.0.1, which the reader trusts as its ca-file.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var tlsOptions = ""
        var readerTLS = ""
        if overTLS {
            let made = try await runTool("/usr/bin/openssl", [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", "\(dir)/key.pem", "-out", "\(dir)/cert.pem"])
            try #require(made.status == 0, "\(made.stderr)")
            tlsOptions = ", tls-cert: \"\(dir)/cert.pem\", tls-key: \"\(dir)/key.pem\""
            readerTLS = ", ca-file: \"\(dir)/cert.pem\""
        }
        let (sim, run, port) = try await startWeb(webOptions: tlsOptions, scheme: overTLS ? "https" : "http")
        defer { sim.process.terminate(); run.process.terminate() }
        let url = "\(overTLS ? "wss" : "ws")://127.0.0.1:\(port)/ws/camera"
        let downstream = try temporaryPipeline("""
            nodes:
              upstream: { type: instar-camera, url: "\(url)", reconnect-attempts: 3\(readerTLS) }
              parse: { type: mp4-parse, inputs: [upstream] }
              keyframes: { type: keyframes, inputs: [parse] }
              log: { type: log, inputs: [keyframes], format: text }
            """)
        let reader = try CamflowProcess(["run", downstream, "--status-interval", "0"])
        defer { reader.process.terminate() }
        try await reader.waitForLine(timeout: .seconds(60)) { $0.contains(" keyframe track=1 ") }
        #expect(reader.stdout.contains(" connected url=\(url)"), "\(reader.stdout)")
    }
}
