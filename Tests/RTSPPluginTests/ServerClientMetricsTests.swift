import CamflowTesting
import Foundation
import Testing

/// The `rtsp` node's per-client series in `/metrics` (served by a `web`
/// node of the same pipeline) and the dashboard's RTSP clients table, with
/// the real binary and real sockets: a series per playing client, gone when
/// it leaves by closing, by TEARDOWN or by being refused, never more than
/// `max-connections`.
@Suite struct ServerClientMetricsTests {
    /// One `camflow_rtsp_client_*` line.
    struct Sample {
        let family: String
        let labels: [String: String]
        let value: Double
    }

    /// The per-client samples of a `/metrics` text (label values here are addresses and ids: no escapes).
    static func clientSamples(_ text: String) -> [Sample] {
        text.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("camflow_rtsp_client_"), let open = line.firstIndex(of: "{"),
                  let close = line.lastIndex(of: "}") else { return nil }
            var labels: [String: String] = [:]
            for pair in line[line.index(after: open)..<close].split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2 { labels[String(parts[0])] = String(parts[1].dropFirst().dropLast()) }
            }
            guard let value = Double(line[line.index(after: close)...].trimmingCharacters(in: .whitespaces)) else { return nil }
            return Sample(family: String(line[..<open]), labels: labels, value: value)
        }
    }

    /// Per client label: its transport and the value of each family.
    static func clients(_ text: String) -> [String: (transport: String, values: [String: Double])] {
        var out: [String: (transport: String, values: [String: Double])] = [:]
        for sample in clientSamples(text) {
            let client = sample.labels["client"] ?? "?"
            out[client, default: (sample.labels["transport"] ?? "?", [:])].values[sample.family] = sample.value
        }
        return out
    }

    /// A pipeline serving cam1 over RTSP, with a `web` node whose `/metrics` URL is returned.
    /// With `webPassword`, the web sink asks for it and the URL carries it (`http://viewer:PASSWORD@…`).
    static func start(options: String, webPassword: String? = nil) async throws -> (server: RTSPServerProcess, metrics: String) {
        let auth = webPassword.map { ", username: viewer, password: \"\($0)\"" } ?? ""
        let server = try RTSPServerProcess(fixture: "h264-main-aac.mp4", options: options,
                                           extraNodes: "  web: { type: web, inputs: [parse], bind: \"127.0.0.1:0\", hls: false\(auth) }")
        _ = try await server.waitUntilServing()
        let line = try await server.waitForLine(containing: "serving http://127.0.0.1:")
        let port = try #require(line.components(separatedBy: "serving http://127.0.0.1:").last?.prefix { $0.isNumber })
        return (server, "http://\(webPassword.map { "viewer:\($0)@" } ?? "")127.0.0.1:\(port)/metrics")
    }

    static func fetch(_ url: String) async throws -> String {
        try await runTool("/usr/bin/curl", ["-s", "--max-time", "5", url]).stdout
    }

    /// Polls `/metrics` until `condition` holds (bounded); the last text, and whether it held.
    static func wait(_ url: String, timeout: Duration = .seconds(10), until condition: (String) -> Bool) async throws
        -> (text: String, held: Bool)
    {
        let deadline = ContinuousClock.now + timeout
        var text = ""
        while ContinuousClock.now < deadline {
            text = try await fetch(url)
            if condition(text) { return (text, true) }
            try await Task.sleep(for: .milliseconds(100))
        }
        return (text, false)
    }

    static func stopFile() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("camflow-rtsp-stop-\(UUID().uuidString)").path
    }

    /// A player over TCP (interleaved) or UDP: SETUP of track 0, PLAY, reads until the stop file exists; then the
    /// TCP one just closes its connection and the UDP one sends TEARDOWN first. Prints its RTSP connection's port.
    static let player = #"""
        import os, select, socket, sys
        port, transport, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3]
        url = "rtsp://127.0.0.1:%d/cam1" % port
        s = socket.create_connection(("127.0.0.1", port))
        pending = b""
        def request(text):
            global pending
            s.sendall(text.encode())
            while b"\r\n\r\n" not in pending:
                chunk = s.recv(65536)
                if not chunk: raise SystemExit("closed by the server")
                pending += chunk
            head, pending = pending.split(b"\r\n\r\n", 1)
            return head.decode()
        if transport == "udp":
            while True:
                rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); rtp.bind(("127.0.0.1", 0))
                first = rtp.getsockname()[1]
                rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    if first % 2: raise OSError("odd")
                    rtcp.bind(("127.0.0.1", first + 1)); break
                except OSError:
                    rtp.close(); rtcp.close()
            spec, sink = "RTP/AVP;unicast;client_port=%d-%d" % (first, first + 1), rtp
        else:
            spec, sink = "RTP/AVP/TCP;unicast;interleaved=0-1", s
        setup = request("SETUP %s/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: %s\r\n\r\n" % (url, spec))
        session = [l.split(":", 1)[1].strip().split(";")[0] for l in setup.split("\r\n") if l.startswith("Session:")][0]
        play = request("PLAY %s RTSP/1.0\r\nCSeq: 2\r\nSession: %s\r\n\r\n" % (url, session))
        print("PLAYING", s.getsockname()[1], play.split("\r\n")[0], flush=True)
        received = len(pending) if transport == "tcp" else 0
        while not os.path.exists(stop):
            if select.select([sink], [], [], 0.05)[0]:
                data = sink.recv(65536)
                if not data: break
                received += len(data)
        print("RECEIVED", received, flush=True)
        if transport == "udp":
            print("TEARDOWN", request("TEARDOWN %s RTSP/1.0\r\nCSeq: 3\r\nSession: %s\r\n\r\n" % (url, session)).split("\r\n")[0])
        s.close()
        """#

    /// The RTSP connection's port a player printed.
    static func playerPort(_ output: String) -> String? {
        output.split(separator: "\n").first { $0.hasPrefix("PLAYING ") }?.split(separator: " ").dropFirst().first.map(String.init)
    }

    @Test func eachPlayingClientHasItsSeriesUntilItCloses_orTearsDown() async throws {
        let (server, metrics) = try await Self.start(options: "udp-ports: \"41000-41999\"")
        defer { server.stop() }
        let stopTCP = Self.stopFile(), stopUDP = Self.stopFile()
        defer { for file in [stopTCP, stopUDP] { try? FileManager.default.removeItem(atPath: file) } }
        async let tcp = python(Self.player, ["\(server.port)", "tcp", stopTCP])
        async let udp = python(Self.player, ["\(server.port)", "udp", stopUDP])

        let sent = "camflow_rtsp_client_bytes_sent_total"
        let playing = try await Self.wait(metrics) { text in
            let clients = Self.clients(text)
            return clients.count == 2 && clients.values.allSatisfy { ($0.values[sent] ?? 0) > 0 }
        }
        #expect(playing.held, "two client series with bytes sent:\n\(playing.text)")
        let clients = Self.clients(playing.text)
        #expect(Set(clients.values.map(\.transport)) == ["tcp", "udp"], "\(clients)")
        let now = Date().timeIntervalSince1970
        for (client, series) in clients {
            #expect(client.hasPrefix("127.0.0.1:") && Int(client.dropFirst("127.0.0.1:".count)) != nil, "\(client)")
            #expect((series.values["camflow_rtsp_client_packets_sent_total"] ?? 0) > 0, "\(series)")
            #expect(series.values["camflow_rtsp_client_gops_dropped_total"] == 0, "\(series)")
            #expect(series.values["camflow_rtsp_client_packets_dropped_total"] != nil, "\(series)")
            #expect(series.values["camflow_rtsp_client_queue_bytes"] != nil, "\(series)")
            let since = series.values["camflow_rtsp_client_connected_since_seconds"] ?? 0
            #expect(abs(since - now) < 60, "connected since \(since), now \(now)")
        }
        for sample in Self.clientSamples(playing.text) {
            #expect(sample.labels["node"] == "rtsp" && sample.labels["stream"] == "cam1", "\(sample.labels)")
            #expect(Set(sample.labels.keys) == ["node", "stream", "client", "transport"], "\(sample.labels)")
        }

        // The TCP player closes its connection: its series go, the UDP player's stay.
        #expect(FileManager.default.createFile(atPath: stopTCP, contents: nil))
        let tcpOutput = try await tcp
        let tcpClient = "127.0.0.1:" + (Self.playerPort(tcpOutput.stdout) ?? "?")
        #expect(clients[tcpClient]?.transport == "tcp", "\(tcpOutput.stdout) \(tcpOutput.stderr) \(clients.keys)")
        let closed = try await Self.wait(metrics) { text in
            let now = Self.clients(text)
            return now[tcpClient] == nil && now.count == 1
        }
        #expect(closed.held, "the closed client's series are gone, the other's stay:\n\(closed.text)")

        // The UDP player sends TEARDOWN: its series go too, the stream's totals stay.
        #expect(FileManager.default.createFile(atPath: stopUDP, contents: nil))
        let udpOutput = try await udp
        #expect(udpOutput.stdout.contains("TEARDOWN RTSP/1.0 200 OK"), "\(udpOutput.stdout) \(udpOutput.stderr)")
        #expect(clients["127.0.0.1:" + (Self.playerPort(udpOutput.stdout) ?? "?")]?.transport == "udp")
        let gone = try await Self.wait(metrics) { Self.clientSamples($0).isEmpty }
        #expect(gone.held, "no client series once both left:\n\(gone.text)")
        #expect(!gone.text.contains("camflow_rtsp_client_"), "not even a family's TYPE line")
        #expect((ServerEndToEndTests.metric("camflow_rtsp_bytes_sent_total", in: gone.text) ?? 0) > 0, "\(gone.text)")
        #expect(ServerEndToEndTests.metric("camflow_rtsp_plays_total", in: gone.text) == 2, "\(gone.text)")
    }

    /// `churn` short sessions (8 at a time), each ending another way: closed after SETUP, closed after PLAY, reset
    /// after PLAY, TEARDOWN after PLAY; then `holders` players one after another, kept until the stop file exists.
    /// Writes {"churnPlayed", "held"} to the holding file once they are all up; prints the same at the end.
    static let crowd = #"""
        import json, os, socket, struct, sys, threading, time
        port, churn, holders, holding, stop = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
        url = "rtsp://127.0.0.1:%d/cam1" % port
        def exchange(s, text, until=b"\r\n\r\n"):
            s.sendall(text.encode())
            data = b""
            while until not in data:
                chunk = s.recv(4096)
                if not chunk: return None
                data += chunk
            return data.decode("latin-1")
        def session(way):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            try:
                setup = exchange(s, "SETUP %s/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n" % url)
                if not setup or not setup.startswith("RTSP/1.0 200") or way == "setup-only":
                    s.close(); return None, False
                sid = [l.split(":", 1)[1].strip().split(";")[0] for l in setup.split("\r\n") if l.startswith("Session:")][0]
                play = exchange(s, "PLAY %s RTSP/1.0\r\nCSeq: 2\r\nSession: %s\r\n\r\n" % (url, sid))
                played = bool(play and play.startswith("RTSP/1.0 200"))
                if way == "hold": return s, played
                if way == "reset": s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                if way == "teardown": exchange(s, "TEARDOWN %s RTSP/1.0\r\nCSeq: 3\r\nSession: %s\r\n\r\n" % (url, sid), b"CSeq: 3\r\n")
                s.close()
                return None, played
            except OSError:
                s.close(); return None, False
        ways = ["setup-only", "close", "reset", "teardown"]
        played, lock = [0], threading.Lock()
        def worker(start):
            for i in range(start, churn, 8):
                if session(ways[i % 4])[1]:
                    with lock: played[0] += 1
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads: t.start()
        for t in threads: t.join()
        held = [s for s, ok in (session("hold") for _ in range(holders)) if ok]
        summary = json.dumps({"churnPlayed": played[0], "held": len(held)})
        with open(holding + ".tmp", "w") as f: f.write(summary)
        os.rename(holding + ".tmp", holding)
        deadline = time.monotonic() + 30
        while not os.path.exists(stop) and time.monotonic() < deadline: time.sleep(0.05)
        for s in held: s.close()
        print(summary)
        """#

    @Test func churnLeavesNoSeries_andPlayersBeyondMaxConnectionsGetNone() async throws {
        let (server, metrics) = try await Self.start(options: "max-connections: 16")
        defer { server.stop() }
        let holding = Self.stopFile(), stop = Self.stopFile()
        defer { for file in [holding, stop] { try? FileManager.default.removeItem(atPath: file) } }
        async let crowd = python(Self.crowd, ["\(server.port)", "200", "24", holding, stop])
        let deadline = ContinuousClock.now + .seconds(15)
        while !FileManager.default.fileExists(atPath: holding), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        let summary = try #require(try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: holding)))
            as? [String: Int], "the crowd never held its players")
        let held = try #require(summary["held"]), churnPlayed = try #require(summary["churnPlayed"])
        // 200 sessions, three in four of them played; the 24 holders are more than max-connections.
        #expect(churnPlayed >= 100 && held >= 1 && held <= 16, "\(summary)")
        let holdingText = try await Self.wait(metrics) { Self.clients($0).count == held }
        #expect(holdingText.held, "one client's series per held player (\(held)):\n\(holdingText.text)")
        #expect(Self.clientSamples(holdingText.text).count == 6 * held)
        #expect(holdingText.text.contains("camflow_rtsp_refused_total{node=\"rtsp\",reason=\"max-connections\"}"))

        #expect(FileManager.default.createFile(atPath: stop, contents: nil))
        let gone = try await Self.wait(metrics) { Self.clientSamples($0).isEmpty }
        #expect(gone.held, "no client series after the crowd left:\n\(gone.text)")
        #expect(ServerEndToEndTests.metric("camflow_rtsp_plays_total", in: gone.text) == Double(churnPlayed + held), "\(gone.text)")
        let result = try await crowd
        #expect(result.status == 0, "\(result.stderr)")
    }

    @Test func aSilentPlayersSeriesGoWhenItsSessionTimesOut() async throws {
        // The player sends nothing after PLAY (no RTCP, no keep-alive): the server closes it after 6 s, long
        // enough for a loaded host to see its series first (2 s was missed once by the polling).
        let (server, metrics) = try await Self.start(options: "session-timeout: 6s")
        defer { server.stop() }
        let stop = Self.stopFile()
        defer { try? FileManager.default.removeItem(atPath: stop) }
        async let player = python(Self.player, ["\(server.port)", "tcp", stop])
        let playing = try await Self.wait(metrics) { Self.clients($0).count == 1 }
        #expect(playing.held, "\(playing.text)")
        let gone = try await Self.wait(metrics, timeout: .seconds(20)) { text in
            Self.clientSamples(text).isEmpty && text.contains("camflow_rtsp_refused_total{node=\"rtsp\",reason=\"session-timeout\"}")
        }
        #expect(gone.held, "the timed-out player's series are gone:\n\(gone.text)")
        #expect(FileManager.default.createFile(atPath: stop, contents: nil))
        let output = try await player
        #expect(output.stdout.contains("PLAYING"), "\(output.stdout) \(output.stderr)")
    }

    @Test func theDashboardListsThePlayer_untilItLeaves() async throws {
        // Opened as http://viewer:PASSWORD@host/, as a user may type it: the page's requests must
        // not be relative to that base, which carries credentials and so is refused by fetch.
        let (server, metrics) = try await Self.start(options: "", webPassword: "dash-secret")
        defer { server.stop() }
        let stop = Self.stopFile()
        defer { try? FileManager.default.removeItem(atPath: stop) }
        async let player = python(Self.player, ["\(server.port)", "tcp", stop])
        let dashboard = String(metrics.dropLast("metrics".count))
        let check = try await runTool("/usr/bin/timeout", ["60", "python3", repositoryFile("Tests/Browser/dashboard_check.py").path,
                                                           dashboard, "--clients", "1", "--stop", stop])
        #expect(check.status == 0, "\(check.stderr)")
        let result = try #require(try JSONSerialization.jsonObject(with: Data(check.stdout.utf8)) as? [String: Any],
                                  "\(check.stdout) \(check.stderr)")
        let played = try await player
        let client = "127.0.0.1:" + (Self.playerPort(played.stdout) ?? "?")

        let during = try #require(result["during"] as? [String: Any])
        #expect(result["seen"] as? Bool == true, "\(during)")
        #expect(during["header"] as? [String] == ["stream", "client", "transport", "sent MiB", "GOPs dropped", "connected for"])
        let rows = during["rows"] as? [[String]] ?? []
        #expect(rows.count == 1, "\(during)")
        if let row = rows.first, row.count == 6 {
            #expect(row[0] == "cam1" && row[1] == client && row[2] == "tcp" && row[4] == "0", "\(row) \(client)")
            #expect(Double(row[3]) != nil && row[5].hasSuffix(" s"), "\(row)")
        }
        #expect(during["elementsInCells"] as? Int == 0)
        #expect(during["sectionShown"] as? Bool == true && during["tableShown"] as? Bool == true
                && during["noneShown"] as? Bool == false, "\(during)")
        let after = try #require(result["after"] as? [String: Any])
        #expect(result["gone"] as? Bool == true, "\(after)")
        #expect(after["noneText"] as? String == "no RTSP clients" && (after["rows"] as? [Any])?.isEmpty == true
                && after["sectionShown"] as? Bool == true, "\(after)")
        #expect((result["consoleErrors"] as? [String])?.isEmpty == true, "\(result["consoleErrors"] ?? "")")

        // The page's reader on text with escapes and markup in label values.
        let parser = try #require(result["parser"] as? [String: Any])
        let samples = parser["samples"] as? [[String: Any]] ?? []
        #expect(samples.map { $0["name"] as? String ?? "" } == [
            "camflow_rtsp_client_bytes_sent_total", "camflow_rtsp_client_gops_dropped_total",
            "camflow_rtsp_client_queue_bytes", "camflow_rtsp_clients",
        ], "\(samples)")
        if samples.count == 4 {
            let first = samples[0]["labels"] as? [[String]] ?? []
            #expect(first == [["node", "rtsp"], ["stream", "a\"b<img src=x>"], ["client", "[::1]:554"], ["transport", "udp"]])
            let third = samples[2]["labels"] as? [[String]] ?? []
            #expect(third == [["__proto__", "p"], ["stream", "s,}{=\\ \n"], ["client", "c"]], "\(third)")
            #expect(samples[2]["value"] as? String == "Inf")
        }
        let clients = parser["clients"] as? [[String: Any]] ?? []
        let escaped = clients.first { $0["client"] as? String == "[::1]:554" }
        #expect(escaped?["bytes"] as? Int == 3_145_728 && escaped?["gops"] as? Int == 2 && escaped?["transport"] as? String == "udp",
                "\(clients)")
    }
}
