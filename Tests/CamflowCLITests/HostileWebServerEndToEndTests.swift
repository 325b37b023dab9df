import Camflow
import CamflowTesting
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The web sink's HTTP server against clients that hold its connections:
/// request heads the parser rejects, heads that never finish, responses
/// nobody reads and blocked LL-HLS requests whose client has gone.
@Suite struct HostileWebServerEndToEndTests {
    let web = WebEndToEndTests()

    /// What a socket received until the server closed it or `deadline` passed.
    struct Ending {
        var bytes: [UInt8] = []
        var closed = false
        var reset = false
        var text: String { String(decoding: bytes, as: UTF8.self) }
    }

    /// Reads `fd` until the server closes it (end of stream or reset) or `deadline` passes, on a
    /// thread of its own: the tests run in parallel on a cooperative pool as wide as the
    /// machine's two cores, which seconds of blocking would starve (another suite's WebSocket
    /// client then misses its server's idle timeout).
    static func readUntilClosed(_ fd: Int32, deadline: ContinuousClock.Instant) async -> Ending {
        await BlockingIOThread.run(name: "test read until closed") { readUntilClosedNow(fd, deadline: deadline) }
    }

    static func readUntilClosedNow(_ fd: Int32, deadline: ContinuousClock.Instant) -> Ending {
        var ending = Ending()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while ContinuousClock.now < deadline {
            let left = deadline - ContinuousClock.now
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let millis = Int32(max(1, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))
            guard poll(&poller, 1, millis) > 0 else { continue }
            let count = recv(fd, &chunk, chunk.count, 0)
            if count > 0 {
                ending.bytes += chunk[..<count]
            } else {
                ending.closed = true
                ending.reset = count < 0 && errno == ECONNRESET
                return ending
            }
        }
        return ending
    }

    static func send(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { return }
            offset += sent
        }
    }

    /// The status of a GET, read from the response's first line only (the body is left unread).
    static func status(port: Int, _ path: String) async throws -> Int {
        try await BlockingIOThread.run(name: "test status") { try statusNow(port: port, path) }
    }

    static func statusNow(port: Int, _ path: String) throws -> Int {
        let fd = try connectTCP(port: port)
        defer { close(fd) }
        send(fd, Array("GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        var head: [UInt8] = []
        var byte: UInt8 = 0
        while head.count < 4096, !head.contains(UInt8(ascii: "\n")), recv(fd, &byte, 1, 0) == 1 { head.append(byte) }
        return String(decoding: head, as: UTF8.self).split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
    }

    @Test func malformedRequestHeads_areAnswered400_andClosedAtOnce() async throws {
        let (sim, run, port) = try await web.startWeb(webOptions: ", max-connections: 300, max-connections-per-client: 200")
        defer { sim.process.terminate(); run.process.terminate() }
        let heads: [(String, [UInt8])] = [
            ("a non-ASCII byte in the target", Array("GET /caf".utf8) + [0xE9] + Array(" HTTP/1.1\r\nHost: x\r\n\r\n".utf8)),
            ("a bad method", Array("G(T / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)),
            ("a bad version", Array("GET / HTTP/1.x\r\nHost: x\r\n\r\n".utf8)),
            ("a negative length", Array("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n".utf8)),
            ("a header over 80 KiB", Array(("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "a", count: 90 * 1024)
                                            + "\r\n\r\n").utf8)),
            ("a space before a colon", Array("GET / HTTP/1.1\r\nHost : x\r\n\r\n".utf8)),
        ]
        // A 90 KiB head may fill the socket's send buffer: sent off the pool.
        var sockets: [(String, Int32)] = []
        defer { for (_, fd) in sockets { close(fd) } }
        try await BlockingIOThread.run(name: "test malformed heads") {
            for round in 0..<10 {
                for (what, bytes) in heads {
                    let fd = try connectTCP(port: port)
                    sockets.append(("\(what) #\(round)", fd))
                    Self.send(fd, bytes)
                }
            }
        }
        // The default header timeout is 10 s: each is answered and closed long before it.
        let started = ContinuousClock.now
        let deadline = started + .seconds(5)
        var slowest = Duration.zero
        for (what, fd) in sockets {
            let ending = await Self.readUntilClosed(fd, deadline: deadline)
            slowest = max(slowest, ContinuousClock.now - started)
            #expect(ending.text.hasPrefix("HTTP/1.1 400 "), "\(what): \(ending.text.prefix(200).debugDescription)")
            #expect(ending.text.lowercased().contains("connection: close"), "\(what)")
            #expect(ending.closed, "\(what): the server closed the connection")
        }
        #expect(slowest < .seconds(5), "\(sockets.count) malformed heads answered and closed within \(slowest)")
        #expect(try await rawHTTP(port: port, "/healthz").status == 200)
        let counted = try await web.prometheusSample(port: port, "camflow_web_connections_refused_total{node=web,reason=malformed-request}")
        #expect(counted >= Double(sockets.count))
    }

    @Test func smuggledBodies_andRequestsThatMeanClose_endTheirConnection() async throws {
        let (sim, run, port) = try await web.startWeb()
        defer { sim.process.terminate(); run.process.terminate() }
        // A body framed by a coding the parser does not know would be read as none, and the
        // request hidden in it served next.
        let hidden = "0\r\n\r\nGET /api/stats HTTP/1.1\r\nHost: x\r\n\r\n"
        for coding in ["xchunked", "identity", "gzip", "chunked, identity"] {
            let fd = try connectTCP(port: port)
            defer { close(fd) }
            Self.send(fd, Array("POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \(coding)\r\n\r\n\(hidden)".utf8))
            let ending = await Self.readUntilClosed(fd, deadline: .now + .seconds(3))
            #expect(ending.text.hasPrefix("HTTP/1.1 400 "), "\(coding): \(ending.text.debugDescription)")
            #expect(ending.closed && !ending.text.contains("uptimeSeconds"), "\(coding): \(ending.text.debugDescription)")
        }
        // A body trickled a byte at a time (every read restarts the idle timeout) would hold its
        // connection for ever: no route takes a body, so one is refused, first request or later.
        for before in ["", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"] {
            let fd = try connectTCP(port: port)
            defer { close(fd) }
            Self.send(fd, Array((before + "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\na").utf8))
            let started = ContinuousClock.now
            let ending = await Self.readUntilClosed(fd, deadline: started + .seconds(5))
            #expect(ending.text.contains("HTTP/1.1 400 "), "\(before.isEmpty ? "first" : "second"): \(ending.text.debugDescription)")
            #expect(ending.closed && ContinuousClock.now - started < .seconds(2), "\(before.isEmpty ? "first" : "second") closed")
        }
        // HTTP/1.0 without keep-alive, and CONNECT: answered, then closed, not held for the 60 s idle timeout.
        for request in ["GET /healthz HTTP/1.0\r\n\r\n", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"] {
            let fd = try connectTCP(port: port)
            defer { close(fd) }
            Self.send(fd, Array(request.utf8))
            let started = ContinuousClock.now
            let ending = await Self.readUntilClosed(fd, deadline: started + .seconds(5))
            #expect(ending.text.hasPrefix("HTTP/1.1 "), "\(request.debugDescription): \(ending.text.debugDescription)")
            #expect(ending.closed && ContinuousClock.now - started < .seconds(2), "\(request.debugDescription) closed")
        }
        let fd = try connectTCP(port: port)
        defer { close(fd) }
        Self.send(fd, Array("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n".utf8))
        let ending = await Self.readUntilClosed(fd, deadline: .now + .seconds(5))
        #expect(ending.text.components(separatedBy: "HTTP/1.1 200").count == 3, "an HTTP/1.0 keep-alive is kept: \(ending.text)")
    }

    @Test func theHeaderTimeout_holdsUntilAHeadIsParsed() async throws {
        let (sim, run, port) = try await web.startWeb(webOptions: ", header-timeout: 1s")
        defer { sim.process.terminate(); run.process.terminate() }
        // Empty lines end no head; a head trickled a byte at a time never finishes.
        let blank = try connectTCP(port: port)
        defer { close(blank) }
        Self.send(blank, Array("\r\n\r\n\r\n\r\n".utf8))
        let trickle = try connectTCP(port: port)
        defer { close(trickle) }
        let started = ContinuousClock.now
        let trickler = Task {
            for byte in Array("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ".utf8) + Array(repeating: UInt8(ascii: "a"), count: 100) {
                Self.send(trickle, [byte])
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        defer { trickler.cancel() }
        for (what, fd) in [("blank lines", blank), ("a trickled head", trickle)] {
            let ending = await Self.readUntilClosed(fd, deadline: started + .seconds(6))
            let took = ContinuousClock.now - started
            #expect(ending.closed, "\(what): closed at the header timeout (\(took))")
            #expect(took >= .milliseconds(900) && took < .seconds(4), "\(what): closed after \(took)")
            #expect(!ending.text.hasPrefix("HTTP/1.1 2"), "\(what): \(ending.text.debugDescription)")
        }
        #expect(try await rawHTTP(port: port, "/healthz").status == 200)
    }

    /// A recording of 12 MB of noise video (lossless, a keyframe every 5 frames) and a
    /// web sink that serves it with a 1 s write timeout.
    func startRecordingServer(writeTimeout: String) async throws -> (run: CamflowProcess, port: Int, root: String) {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-hostile-web-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let noise = scratch + "/noise.mp4"
        let encoder = try CamflowProcess(["-v", "error", "-f", "lavfi", "-i", "nullsrc=s=640x480:r=25,geq=random(1)*255:128:128",
                                          "-t", "1.2", "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-g", "5",
                                          "-pix_fmt", "yuv420p", "-movflags", "frag_keyframe+empty_moov+default_base_moof",
                                          noise], executable: "/usr/bin/ffmpeg")
        #expect(try await encoder.waitForExit(timeout: .seconds(60)) == 0, "\(encoder.stderr)")
        let size = (try FileManager.default.attributesOfItem(atPath: noise)[.size] as? Int) ?? 0
        try #require(size > 4_000_000, "the noise is \(size) bytes")
        let root = scratch + "/rec"
        let pipeline = try temporaryPipeline("""
            nodes:
              noise: { type: file-replay, path: "\(noise)", stream: cam }
              parse: { type: mp4-parse, inputs: [noise] }
              record: { type: file-record, inputs: [parse], path: "\(root)/{stream}/rec.mp4", segment: 1h }
              live: { type: file-replay, path: "\(repositoryRoot.path)/Tests/Fixtures/h264-baseline.mp4", realtime: true, loop: true }
              liveparse: { type: mp4-parse, inputs: [live] }
              web: { type: web, inputs: [liveparse], bind: "127.0.0.1:0", recordings: ["\(root)"], hls: false, write-timeout: \(writeTimeout) }
            """)
        let run = try CamflowProcess(["run", pipeline, "--status-interval", "0"])
        try await run.waitForLine(timeout: .seconds(60), inStderr: true) { $0.contains("serving http://127.0.0.1:") }
        let line = try #require(run.stderr.split(separator: "\n").first { $0.contains("serving http://127.0.0.1:") })
        let digits = line.split(separator: "serving http://127.0.0.1:").last?.prefix { $0.isNumber } ?? ""
        let port = try #require(Int(digits), "\(line)")
        try await waitUntil("the noise recorded", timeout: .seconds(60)) {
            let body = (try? await rawHTTP(port: port, "/api/recordings?stream=cam").body) ?? ""
            return body.contains("\"start\"")
        }
        return (run, port, scratch)
    }

    @Test func clipDownloadsThatNeverRead_loseTheirSlot_atTheWriteTimeout() async throws {
        let (run, port, scratch) = try await startRecordingServer(writeTimeout: "1s")
        defer { run.process.terminate(); try? FileManager.default.removeItem(atPath: scratch) }
        let now = Int(Date().timeIntervalSince1970)
        let clip = "/api/recordings/cam/clip.mp4?start=\(now - 600)&duration=3600"
        // Four downloads (every clip slot) that read nothing, with a small receive window.
        var stuck: [Int32] = []
        defer { for fd in stuck { close(fd) } }
        for _ in 0..<4 {
            let fd = try connectTCP(port: port, receiveBuffer: 4096)
            Self.send(fd, Array("GET \(clip) HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            stuck.append(fd)
        }
        // Each has its slot: its response began (seen without taking it from the socket).
        for fd in stuck {
            let (peeked, head) = await BlockingIOThread.run(name: "test peek") { () -> (Int, [UInt8]) in
                var head = [UInt8](repeating: 0, count: 12)
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&poller, 1, 10_000) > 0 else { return (0, head) }
                return (recv(fd, &head, head.count, Int32(MSG_PEEK)), head)
            }
            #expect(peeked == 12 && String(decoding: head, as: UTF8.self) == "HTTP/1.1 200", "\(head)")
        }
        // Their slots come back within the timeout (checked 4 times a timeout) plus slack.
        let started = ContinuousClock.now
        var status = 0
        while status != 200, ContinuousClock.now - started < .seconds(6) {
            status = (try? await Self.status(port: port, clip)) ?? 0
        }
        let freed = ContinuousClock.now - started
        #expect(status == 200)
        #expect(freed < .seconds(4), "slots came back after \(freed)")
        // Every one of the four is closed, and counted.
        var counted = 0.0
        let deadline = ContinuousClock.now + .seconds(5)
        while counted < 4, ContinuousClock.now < deadline {
            counted = (try? await web.prometheusSampleNow(port: port, "camflow_web_connections_refused_total{node=web,reason=write-timeout}")) ?? 0
        }
        let metrics = counted == 4 ? "" : (try? await rawHTTP(port: port, "/metrics").body) ?? ""
        #expect(counted == 4, "\(metrics)")
    }

    @Test func aReaderThatReadsSlowly_keepsItsDownload() async throws {
        let (run, port, scratch) = try await startRecordingServer(writeTimeout: "1s")
        defer { run.process.terminate(); try? FileManager.default.removeItem(atPath: scratch) }
        let now = Int(Date().timeIntervalSince1970)
        let fd = try connectTCP(port: port, receiveBuffer: 8192)
        defer { close(fd) }
        Self.send(fd, Array("GET /api/recordings/cam/clip.mp4?start=\(now - 600)&duration=3600 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        // 64 KiB every 0.2 s: far slower than the server writes, never idle for a timeout. Paced on a
        // thread of its own: a wake-up late by a second on the tests' busy shared pool would be a
        // reader idle past the timeout, not a slow one.
        var received = await BlockingIOThread.run(name: "test slow reader") { () -> Int in
            var received = 0
            var chunk = [UInt8](repeating: 0, count: 65536)
            let started = ContinuousClock.now
            while ContinuousClock.now - started < .seconds(3) {
                let count = recv(fd, &chunk, chunk.count, Int32(MSG_DONTWAIT))
                if count == 0 { break }
                if count > 0 { received += count }
                usleep(200_000)
            }
            return received
        }
        let ending = await Self.readUntilClosed(fd, deadline: .now + .seconds(30))
        received += ending.bytes.count
        #expect(ending.closed && !ending.reset)
        #expect(received > 14_000_000, "the whole clip came, slowly at first: \(received) bytes")
    }

    @Test func blockedHLSRequests_endWhenTheirClientHangsUp() async throws {
        let (sim, run, port) = try await web.startWeb(webOptions: ", max-connections-per-client: 8")
        defer { sim.process.terminate(); run.process.terminate() }
        var playlist = ""
        try await waitUntil("the camera's first HLS segment", timeout: .seconds(60)) {
            let response = try? await rawHTTP(port: port, "/hls/camera/index.m3u8")
            playlist = response?.body ?? ""
            return response?.status == 200
        }
        // The newest part's segment number; two past it is as far as a client may ask.
        let newest = try #require(playlist.split(separator: "\n").compactMap { line -> Int? in
            guard let range = line.range(of: "URI=\"part-") else { return nil }
            return Int(line[range.upperBound...].prefix { $0.isNumber })
        }.max())
        var waiting: [Int32] = []
        for _ in 0..<6 {
            let fd = try connectTCP(port: port)
            Self.send(fd, Array("GET /hls/camera/index.m3u8?_HLS_msn=\(newest + 2) HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            waiting.append(fd)
        }
        try await waitUntil("six requests blocked", timeout: .seconds(5)) {
            (try? await apiStats(port: port)["hlsWaiting"] as? Int) == 6
        }
        let hungUp = ContinuousClock.now
        for fd in waiting { close(fd) }
        try await waitUntil("no request blocked", timeout: .seconds(5)) {
            (try? await apiStats(port: port)["hlsWaiting"] as? Int) == 0
        }
        let took = ContinuousClock.now - hungUp
        #expect(took < .milliseconds(1500), "the waits ended \(took) after their clients hung up")
    }

    @Test func hlsNumbers_arePlainDecimalDigits() async throws {
        let (sim, run, port) = try await web.startWeb()
        defer { sim.process.terminate(); run.process.terminate() }
        try await waitUntil("the camera's first HLS segment", timeout: .seconds(60)) {
            (try? await rawHTTP(port: port, "/hls/camera/index.m3u8").status) == 200
        }
        for query in ["_HLS_msn=+5", "_HLS_msn=%2B5", "_HLS_msn=-0", "_HLS_msn=%205", "_HLS_msn=5%20", "_HLS_msn=0x5",
                      "_HLS_msn=1&_HLS_part=+0", "_HLS_msn=0000000000001", "_HLS_msn="] {
            let response = try await rawHTTP(port: port, "/hls/camera/index.m3u8?" + query)
            #expect(response.status == 400, "\(query): \(response.status) \(response.body)")
        }
        #expect(try await rawHTTP(port: port, "/hls/camera/part-+1.0.m4s").status == 404)
    }

    @Test func aRefusedOrigin_isLoggedOnce_withHowToAllowIt() async throws {
        let (sim, run, port) = try await web.startWeb()
        defer { sim.process.terminate(); run.process.terminate() }
        for _ in 0..<5 {
            #expect(try await rawHTTP(port: port, "/ws", upgrade: true, headers: ["Origin: https://nvr.example:8443"]).status == 403)
        }
        #expect(try await rawHTTP(port: port, "/ws", upgrade: true, headers: ["Origin: https://other.example"]).status == 403)
        try await run.waitForLine(timeout: .seconds(10), inStderr: true) { $0.contains("other.example") }
        let lines = run.stderr.split(separator: "\n").filter { $0.contains("refused a WebSocket") }
        let first = lines.filter { $0.contains("nvr.example") }
        #expect(first.count == 1, "\(lines)")
        #expect(first.first?.contains("add \"https://nvr.example:8443\" to the web node's 'allowed-origins'") == true, "\(lines)")
    }
}
