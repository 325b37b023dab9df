import Camflow
import CamflowTesting
import Foundation
import Logging
import Testing
import WSClient
#if canImport(Glibc)
import Glibc
#endif

/// The web sink's camera protocol as software written for the camera meets
/// it, and the dashboard's graph, in headless Chromium.
@Suite struct RestreamEndToEndTests {
    /// Runs a script of Tests/Browser with Debian's python3 and returns its JSON.
    func browserScript(_ name: String, _ arguments: [String]) async throws -> [String: Any] {
        let script = repositoryRoot.appendingPathComponent("Tests/Browser/\(name)").path
        let check = try CamflowProcess([script] + arguments, executable: "/usr/bin/python3")
        let status = try await check.waitForExit(timeout: .seconds(120))
        #expect(status == 0, "\(check.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(check.stdout.utf8)) as? [String: Any],
                            "\(check.stdout) \(check.stderr)")
    }

    @Test func aPageWrittenForTheCamera_joinsMidStream_andPlays() async throws {
        // The page is a file: its WebSocket's Origin is "null", which only '*' lets in.
        let (sim, run, port) = try await WebEndToEndTests().startWeb(webOptions: ", allowed-origins: [\"*\"]")
        defer { sim.process.terminate(); run.process.terminate() }
        // Join well into the stream: the camera's decode times are seconds from 0 by then.
        var codecs = ""
        try await waitUntil("the stream has run 4 s", timeout: .seconds(60)) {
            guard let stream = (try? await apiStats(port: port))?["streams"] as? [[String: Any]],
                  let first = stream.first, let seconds = first["mediaSeconds"] as? Double else { return false }
            codecs = first["codecs"] as? String ?? ""
            return seconds >= 4
        }
        let result = try await browserScript("camera_page_check.py", ["ws://127.0.0.1:\(port)/ws", "--codecs", codecs,
                                                                      "--play", "1.5", "--timeout", "30"])
        let currentTime = try #require(result["currentTime"] as? Double, "\(result)")
        #expect(currentTime >= 1.5, "the page plays without seeking: \(result)")
        let buffered = try #require(result["buffered"] as? [[Double]])
        #expect((buffered.first?.first ?? .infinity) < 0.5, "the viewer's timeline starts at 0: \(result)")
        #expect((result["errors"] as? [String])?.isEmpty == true, "\(result)")
    }

    /// Text messages a client gets after sending `commands` to `path`, until the server closes, `count`
    /// arrived or 10 s passed: a plain socket, so what the server does is all that decides when it ends.
    /// The socket blocks, so it is read on a thread of its own.
    func texts(port: Int, _ path: String, send commands: [String], count: Int) async throws -> [String] {
        try await BlockingIOThread.run(name: "test websocket texts") {
            try blockingTexts(port: port, path, send: commands, count: count)
        }
    }

    private func blockingTexts(port: Int, _ path: String, send commands: [String], count: Int) throws -> [String] {
        let fd = try connectTCP(port: port)
        defer { close(fd) }
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        _ = request.withCString { send(fd, $0, strlen($0), 0) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while !bytes.suffix(4).elementsEqual([13, 10, 13, 10]), recv(fd, &chunk, 1, 0) == 1 { bytes.append(chunk[0]) }
        #expect(String(decoding: bytes, as: UTF8.self).hasPrefix("HTTP/1.1 101"), "\(String(decoding: bytes, as: UTF8.self))")
        for command in commands {
            // Masked text frames, as clients send; the length in 7 or 16 bits.
            let text = Array(command.utf8)
            let mask: [UInt8] = [7, 1, 2, 3]
            let length: [UInt8] = text.count < 126 ? [0x80 | UInt8(text.count)]
                                                   : [0x80 | 126, UInt8(text.count >> 8), UInt8(text.count & 0xFF)]
            let frame = [0x81] + length + mask + text.enumerated().map { $1 ^ mask[$0 % 4] }
            _ = frame.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        }
        var texts: [String] = []
        bytes = []
        let deadline = Date().addingTimeInterval(10)
        while texts.count < count, Date() < deadline {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { break }
            bytes += chunk[..<n]
            while let (opcode, payload, used) = SlowViewer.frame(bytes) {
                bytes.removeFirst(used)
                if opcode == 1 { texts.append(String(decoding: payload, as: UTF8.self)) }
                if opcode == 8 { return texts }
            }
        }
        return texts
    }

    @Test func hostileNamesAndCommands_areRefusedCutAndEscaped() async throws {
        let (sim, run, port) = try await WebEndToEndTests().startWeb()
        defer { sim.process.terminate(); run.process.terminate() }
        let watchdog = Task {
            try await Task.sleep(for: .seconds(60))
            run.process.terminate()
        }
        defer { watchdog.cancel() }
        // A name no stream can have: refused at once, not kept (it would show in /api/stats and the log).
        let long = try await texts(port: port, "/ws/" + String(repeating: "a", count: 300), send: ["livestream"], count: 2)
        #expect(long == ["error: a stream name has at most 256 bytes"], "\(long)")
        // A name that would forge a log line and colour the terminal. The hub says "no stream" once it
        // holds some stream (until then the name may yet come): under load the camera's first fragment
        // can come after the server is up.
        try await waitUntil("the camera's stream reaches the hub", timeout: .seconds(30)) {
            ((try? await apiStats(port: port))?["streams"] as? [[String: Any]])?.isEmpty == false
        }
        let forged = try await texts(port: port, "/ws/evil%0Aforged%1B%5B31m", send: ["livestream"], count: 1)
        #expect(forged.first?.hasPrefix("error: no stream 'evil\\nforged\\u{1B}[31m'") == true, "\(forged)")
        // One grapheme of 60 KB (a letter and 30 000 combining accents): the answer echoes 100 characters, not 60 KB.
        let accents = "e" + String(repeating: "\u{301}", count: 30_000)
        let echoed = try await texts(port: port, "/ws", send: [accents], count: 1)
        #expect(echoed.count == 1 && echoed[0].utf8.count < 400, "\(echoed.map(\.utf8.count))")
        try await waitUntil("the viewer's line is logged", timeout: .seconds(10)) { run.stderr.contains("evil") }
        #expect(!run.stderr.contains("forged\u{1B}") && !run.stderr.contains("evil\nforged"), "raw control characters in the log")
        #expect(run.stderr.contains("evil\\nforged\\u{1B}[31m"))
        #expect(!run.stderr.contains(String(repeating: "a", count: 300)))
    }

    @Test func aKeepAliveFlood_closesThatViewer_only() async throws {
        let (sim, run, port) = try await WebEndToEndTests().startWeb()
        defer { sim.process.terminate(); run.process.terminate() }
        let watchdog = Task {
            try await Task.sleep(for: .seconds(60))
            run.process.terminate()
        }
        defer { watchdog.cancel() }
        // A client that keeps to the protocol (a keep-alive now and then) goes on.
        let calm = ViewerRecorder()
        let calmTask = Task { try await calm.watch(port: port) }
        defer { calmTask.cancel() }
        let started = ContinuousClock.now
        let close = try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/ws", logger: Logger(label: "test")) { inbound, outbound, _ in
            for _ in 0..<5000 { try await outbound.write(.text("keep-alive")) }
            for try await _ in inbound.messages(maxSize: 1 << 20) {}
        }
        #expect(close?.closeCode == .policyViolation, "\(String(describing: close))")
        #expect(ContinuousClock.now - started < .seconds(30))
        #expect(run.stderr.contains("closed: more than 50 messages a second"), "\(run.stderr)")
        let before = calm.messageCount
        try await waitUntil("the calm viewer still gets the stream", timeout: .seconds(30)) { calm.messageCount > before + 1 }
    }

    // MARK: Dashboard graph

    /// A graph as the layout takes it: nodes with their inputs, and edges.
    func graphJSON(_ inputs: [(String, [String])]) -> [String: Any] {
        ["nodes": inputs.map { ["id": $0.0, "inputs": $0.1] },
         "edges": inputs.flatMap { node in node.1.map { ["from": $0, "to": node.0] } }]
    }

    /// The demo pipeline's graph, as `camflow graph --format dot` draws it.
    func demoGraph() async throws -> [(String, [String])] {
        let result = try await camflow("graph", "pipelines/demo.yaml", "--format", "dot")
        #expect(result.status == 0, "\(result.stderr)")
        var order: [String] = []
        var inputs: [String: [String]] = [:]
        for line in result.stdout.split(separator: "\n") {
            let quoted = line.split(separator: "\"", omittingEmptySubsequences: false)
            if line.contains(" -> "), quoted.count >= 4 {
                inputs[String(quoted[3]), default: []].append(String(quoted[1]))
            } else if line.contains("[label="), quoted.count >= 2, !line.contains("digraph") {
                order.append(String(quoted[1]))
            }
        }
        return order.map { ($0, inputs[$0] ?? []) }
    }

    @Test func dashboardGraph_edgesNeverCrossANodeBox() async throws {
        let demo = try await demoGraph()
        #expect(demo.count >= 10, "\(demo)")
        // 20 nodes: two cameras, a chain of twelve queues, and edges that skip layers forwards and fan out.
        var twenty: [(String, [String])] = [("cam1", []), ("cam2", [])]
        for index in 1...12 { twenty.append(("q\(index)", [index == 1 ? "cam1" : "q\(index - 1)"] + (index == 4 ? ["cam2"] : []))) }
        twenty += [("web", ["q12", "cam2", "q3"]), ("log", ["q2", "q7", "q11"]), ("rec", ["q5"]), ("stats", ["cam1", "q9"]),
                   ("zmq", ["stats", "q1"]), ("exec", ["cam2"])]
        #expect(twenty.count == 20)
        let graphs = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-graphs-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: ["demo": graphJSON(demo), "twenty": graphJSON(twenty)]).write(to: graphs)
        defer { try? FileManager.default.removeItem(at: graphs) }

        let pipeline = try temporaryPipeline("""
            nodes:
              replay: { type: file-replay, path: "\(repositoryRoot.path)/Tests/Fixtures/h264-main-aac.mp4", realtime: true, loop: true }
              parse: { type: mp4-parse, inputs: [replay] }
              keyframes: { type: keyframes, inputs: [parse] }
              log: { type: log, inputs: [keyframes, parse] }
              web: { type: web, inputs: [parse], bind: "127.0.0.1:0" }
            """)
        let run = try CamflowProcess(["run", pipeline, "--status-interval", "0"])
        defer { run.process.terminate() }
        try await run.waitForLine(timeout: .seconds(60), inStderr: true) { $0.contains("serving http://127.0.0.1:") }
        let line = try #require(run.stderr.split(separator: "\n").first { $0.contains("serving http://127.0.0.1:") })
        let port = try #require(line.split(separator: "serving http://127.0.0.1:").last?.prefix { $0.isNumber })
        let result = try await browserScript("graph_layout_check.py", ["http://127.0.0.1:\(port)/", "--graphs", graphs.path,
                                                                       "--widths", "800,1280,1400,2400"])
        let live = try #require(result["live"] as? [String: Any], "\(result)")
        #expect(live["boxes"] as? Int == 5 && live["edges"] as? Int == 5, "\(live)")
        #expect((live["problems"] as? [String])?.isEmpty == true, "\(live)")
        let laidOut = try #require(result["graphs"] as? [String: [[String: Any]]])
        for (name, nodes) in [("demo", demo.count), ("twenty", 20)] {
            let edges = (name == "demo" ? demo : twenty).reduce(0) { $0 + $1.1.count }
            for layout in try #require(laidOut[name]) {
                #expect(layout["boxes"] as? Int == nodes && layout["edges"] as? Int == edges, "\(name): \(layout)")
                #expect((layout["problems"] as? [String])?.isEmpty == true, "\(name): \(layout)")
                let width = try #require(layout["width"] as? Double), drawn = try #require(layout["layoutWidth"] as? Double)
                #expect(drawn <= width, "\(name) fits \(width) px without scrolling: \(layout)")
            }
        }
        #expect((result["consoleErrors"] as? [String])?.isEmpty == true, "\(result)")
    }
}
