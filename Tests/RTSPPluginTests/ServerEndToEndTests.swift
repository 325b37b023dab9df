import CamflowTesting
import Foundation
import Testing

/// The `rtsp` node in the real binary, a fixture replayed live into it,
/// read by ffprobe, ffmpeg and GStreamer over TCP and UDP.
@Suite struct ServerEndToEndTests {
    @Test func h264AndAACOverTCP() async throws {
        let server = try RTSPServerProcess(fixture: "h264-main-aac.mp4")
        defer { server.stop() }
        let url = try await server.waitUntilServing()
        let probed = try await probe(url, transport: "tcp")
        #expect(probed.status == 0, "\(probed.stderr)")
        #expect(probed.streams.contains("h264,640,360,25/1"), "\(probed.streams)")
        #expect(probed.streams.contains { $0.hasPrefix("aac,") && $0.contains("48000") }, "\(probed.streams)")
        let decoded = try await decode(url, transport: "tcp")
        #expect(decoded.status == 0 && decoded.errors.isEmpty, "\(decoded.errors)")
    }

    @Test func h265OverTCP() async throws {
        let server = try RTSPServerProcess(fixture: "h265.mp4")
        defer { server.stop() }
        let url = try await server.waitUntilServing()
        let probed = try await probe(url, transport: "tcp")
        #expect(probed.status == 0, "\(probed.stderr)")
        #expect(probed.streams == ["hevc,320,240,25/1"], "\(probed.streams)")
        let decoded = try await decode(url, transport: "tcp")
        #expect(decoded.status == 0 && decoded.errors.isEmpty, "\(decoded.errors)")
    }

    @Test func h264AndAACOverUDP() async throws {
        // Reports twice a second: a player's timestamps must not jump at each one (ffmpeg over UDP says so).
        let server = try RTSPServerProcess(fixture: "h264-main-aac.mp4",
                                           options: "udp-ports: \"24000-24999\", sender-report-interval: 500ms")
        defer { server.stop() }
        let url = try await server.waitUntilServing()
        let probed = try await probe(url, transport: "udp")
        #expect(probed.status == 0, "\(probed.stderr)")
        #expect(probed.streams.contains("h264,640,360,25/1"), "\(probed.streams)")
        let decoded = try await decode(url, transport: "udp", seconds: 4)
        #expect(decoded.status == 0 && decoded.errors.isEmpty, "\(decoded.errors)")
    }

    @Test func gstreamerPlaysIt() async throws {
        let server = try RTSPServerProcess(fixture: "h264-main-aac.mp4")
        defer { server.stop() }
        let url = try await server.waitUntilServing()
        // 50 decoded buffers, then end of stream: gst-launch exits 0 only if they came (timeout's 124 otherwise).
        let result = try await runTool("/usr/bin/timeout", [
            "30", "gst-launch-1.0", "-q", "rtspsrc", "location=\(url)", "protocols=tcp", "!", "decodebin", "!",
            "identity", "eos-after=50", "!", "fakesink",
        ])
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
    }

    /// A client that plays and then reads nothing, with a small kernel buffer.
    static let stalledClient = #"""
        import os, socket, sys, time
        port, hold, stop = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
        url = "rtsp://127.0.0.1:%d/cam1" % port
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        def request(text):
            s.sendall(text.encode())
            data = b""
            while b"\r\n\r\n" not in data: data += s.recv(1)
            head = data.decode()
            for line in head.split("\r\n"):
                if line.lower().startswith("content-length:"): s.recv(int(line.split(":")[1]), socket.MSG_WAITALL)
            return head
        setup = request("SETUP %s/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n" % url)
        session = [l.split(":", 1)[1].strip().split(";")[0] for l in setup.split("\r\n") if l.startswith("Session:")][0]
        play = request("PLAY %s RTSP/1.0\r\nCSeq: 2\r\nSession: %s\r\n\r\n" % (url, session))
        print(play.split("\r\n")[0], flush=True)
        start = time.monotonic()
        while time.monotonic() < start + hold and not os.path.exists(stop): time.sleep(0.1)
        """#

    /// The value of a metric line for the stream `cam1` in Prometheus text, if present.
    static func metric(_ name: String, in text: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(name + "{") && $0.contains("stream=\"cam1\"") }
            .flatMap { $0.split(separator: " ").last.flatMap { Double($0) } }
    }

    @Test func aClientThatStopsReadingLosesGOPsAndNobodyElseNotices() async throws {
        let server = try RTSPServerProcess(fixture: "h264-main-aac.mp4", options: "client-queue: 16KiB",
                                           extraNodes: "  web: { type: web, inputs: [parse], bind: \"127.0.0.1:0\", hls: false }")
        defer { server.stop() }
        let url = try await server.waitUntilServing()
        let line = try await server.waitForLine(containing: "serving http://127.0.0.1:")
        let webPort = try #require(line.components(separatedBy: "serving http://127.0.0.1:").last?.prefix { $0.isNumber })
        let metrics = "http://127.0.0.1:\(webPort)/metrics"
        let stop = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-rtsp-stop-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: stop) }
        async let stalled = python(Self.stalledClient, ["\(server.port)", "30", stop])
        // Bounded wait: the stalled client's queue overflows and its GOPs are dropped, counted (after ~4 s here).
        let deadline = ContinuousClock.now + .seconds(25)
        var dropped = 0.0
        var text = ""
        while dropped == 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(250))
            text = try await runTool("/usr/bin/curl", ["-s", "--max-time", "5", metrics]).stdout
            dropped = Self.metric("camflow_rtsp_gops_dropped_total", in: text) ?? 0
        }
        #expect(dropped > 0, "\(text)")
        #expect(Self.metric("camflow_rtsp_clients", in: text) == 1)
        #expect((Self.metric("camflow_rtsp_bytes_sent_total", in: text) ?? 0) > 0)
        // Meanwhile another client plays undisturbed.
        let decoded = try await decode(url, transport: "tcp", seconds: 2)
        #expect(decoded.status == 0 && decoded.errors.isEmpty, "\(decoded.errors)")
        #expect(FileManager.default.createFile(atPath: stop, contents: nil))
        let result = try await stalled
        #expect(result.stdout.hasPrefix("RTSP/1.0 200 OK"), "\(result.stderr)")
    }
}
