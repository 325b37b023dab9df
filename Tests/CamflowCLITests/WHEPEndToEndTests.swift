import CamflowTesting
import Camflow
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// WebRTC playback (WHEP) through the real binary: a looped H.264 file
/// without B-frames served by the web sink, played by headless Chromium
/// (Tests/Browser/browser_check.py's `webrtc` mode) with getStats read back.
@Suite struct WHEPEndToEndTests {
    /// `file-replay` (looped, real time) → `mp4-parse` → `web` with an ephemeral WebRTC port; returns the HTTP port.
    func startWeb(fixture: String = "h264-baseline.mp4", webrtcPort: Int = 0, webOptions: String = "",
                  authorization: String? = nil) async throws -> (run: CamflowProcess, port: Int) {
        let pipeline = try temporaryPipeline("""
            nodes:
              replay: { type: file-replay, path: "\(repositoryRoot.path)/Tests/Fixtures/\(fixture)", realtime: true, loop: true }
              parse: { type: mp4-parse, inputs: [replay] }
              web: { type: web, inputs: [parse], bind: "127.0.0.1:0", webrtc-port: \(webrtcPort)\(webOptions) }
            """)
        let run = try CamflowProcess(["run", pipeline, "--status-interval", "0"])
        let serving = "serving http://127.0.0.1:"
        try await run.waitForLine(timeout: .seconds(60), inStderr: true) { $0.contains(serving) }
        let line = try #require(run.stderr.split(separator: "\n").first { $0.contains(serving) })
        let digits = try #require(line.split(separator: serving).last?.prefix { $0.isNumber })
        let port = try #require(Int(digits))
        // Offers are answered once the stream's init segment and first fragments went through.
        try await waitUntil(timeout: .seconds(30)) {
            let body = (try? await rawHTTP(port: port, "/api/stats", authorization: authorization).body) ?? ""
            let stats = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
            let streams = stats?["streams"] as? [[String: Any]] ?? []
            return (streams.first?["fragments"] as? Int ?? 0) >= 2
        }
        return (run, port)
    }

    func waitUntil(timeout: Duration, _ condition: () async -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !(await condition()) {
            try #require(ContinuousClock.now < deadline, "condition not met within \(timeout)")
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Runs browser_check.py's `webrtc` mode against `/whep/replay` from a page of the sink's origin.
    func playInChromium(port: Int, _ extra: [String]) async throws -> [String: Any] {
        let script = repositoryRoot.appendingPathComponent("Tests/Browser/browser_check.py").path
        let check = try CamflowProcess([script, "webrtc", "http://127.0.0.1:\(port)/healthz", "--whep", "/whep/replay",
                                        "--timeout", "45"] + extra, executable: "/usr/bin/python3")
        let status = try await check.waitForExit(timeout: .seconds(90))
        #expect(status == 0, "\(check.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(check.stdout.utf8)) as? [String: Any],
                            "\(check.stdout) \(check.stderr)")
    }

    @Test func chromium_decodesTheStream_overWHEP() async throws {
        let (run, port) = try await startWeb()
        defer { run.process.terminate() }
        let result = try await playInChromium(port: port, ["--frames", "10"])
        #expect(result["postStatus"] as? Int == 201, "\(result)")
        #expect(result["iceState"] as? String == "connected", "\(result)")
        #expect(result["dtlsState"] as? String == "connected", "\(result)")
        #expect(result["tlsVersion"] as? String == "FEFD")
        #expect(result["srtpCipher"] as? String == "SRTP_AES128_CM_HMAC_SHA1_80")
        #expect(result["framesDecoded"] as? Int ?? 0 >= 10, "\(result)")
        // The fixture is 320x240 Constrained Baseline.
        #expect(result["frameWidth"] as? Int == 320)
        #expect(result["frameHeight"] as? Int == 240)
        #expect(result["videoWidth"] as? Int == 320)
        // The offered audio section is rejected (port 0, out of BUNDLE): only the video receives.
        let answer = try #require(result["answer"] as? String)
        #expect(answer.contains("m=audio 0 ") && answer.contains("a=group:BUNDLE 0\r\n"), "\(answer)")
        #expect(answer.contains("a=candidate:1 1 udp 2130706431 127.0.0.1 "))
        #expect(result["liveTransceivers"] as? Int == 1)
        let href = try #require(result["location"] as? String)
        let location = try #require(URL(string: href)?.path)
        #expect(location.hasPrefix("/whep/replay/") && location.dropFirst(13).count == 32, "\(location)")
        #expect(result["deleteStatus"] as? Int == 200)
        #expect(run.stderr.contains("DTLS fingerprint matches the offer's"), "\(run.stderr)")
        #expect(run.stderr.contains("closed: DELETE"))
        // Deleted once: gone.
        #expect(try await whepRequest(port: port, method: "DELETE", location).status == 404)
    }

    @Test func chromium_keepsDecoding_whileGarbageHitsTheWebRTCPort() async throws {
        let (run, port) = try await startWeb()
        defer { run.process.terminate() }
        let result = try await playInChromium(port: port, ["--frames", "25", "--garbage", "3000"])
        let atGarbage = try #require(result["framesAtGarbage"] as? Int, "\(result)")
        #expect(result["garbageSent"] as? Int == 3000)
        #expect(result["framesDecoded"] as? Int ?? 0 >= atGarbage + 25, "\(result)")
        #expect(result["dtlsState"] as? String == "connected")
        #expect(result["packetsLost"] as? Int ?? 1 <= 2, "\(result)")
        #expect(!run.stderr.contains("closed: DTLS"), "\(run.stderr)")
        #expect(run.process.isRunning)
        // The garbage reached the port and was dropped before any state (counted in /metrics each second; the
        // sender paces it, but on a loaded machine the kernel drops many: its UDP buffer holds ~100 datagrams).
        try await waitUntil(timeout: .seconds(10)) {
            let text = (try? await rawHTTP(port: port, "/metrics").body) ?? ""
            let line = text.split(separator: "\n").first { $0.hasPrefix("camflow_webrtc_datagrams_dropped_total{") }
            return line.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0 >= 100
        }
    }

    @Test func whep_refusesWhatItCannotAnswer() async throws {
        let (run, port) = try await startWeb()
        defer { run.process.terminate() }
        let offer = "v=0\r\n"
        #expect(try await whepRequest(port: port, method: "POST", "/whep/nonesuch", body: offer).status == 404)
        #expect(try await whepRequest(port: port, method: "POST", "/whep/replay", contentType: "text/plain", body: offer).status == 415)
        let bad = try await whepRequest(port: port, method: "POST", "/whep/replay", body: "hello")
        #expect(bad.status == 400 && bad.body.contains("offer"), "\(bad)")
        let noVideo = try await whepRequest(port: port, method: "POST", "/whep/replay", body: offer)
        #expect(noVideo.status == 406, "\(noVideo)")
        #expect(try await whepRequest(port: port, method: "DELETE", "/whep/replay/00000000000000000000000000000000").status == 404)
        // Bodies are taken on WHEP POSTs only.
        #expect(try await whepRequest(port: port, method: "POST", "/api/stats", body: offer).status == 400)
        // An offer announced over 64 KiB: 413 saying so, before any of it is read.
        let large = try await whepRequest(port: port, method: "POST", "/whep/replay",
                                          headers: ["Content-Type: application/sdp", "Content-Length: 70000"])
        #expect(large.status == 413 && large.body.contains("at most 65536 bytes"), "\(large)")
    }

    @Test func chromium_playsFromAPageOfAnotherOrigin_behindTheSinksCredentials() async throws {
        let authorization = "Basic " + Data("viewer:secret".utf8).base64EncodedString()
        // The page comes from an origin the script serves itself: a preflight comes first.
        let (run, port) = try await startWeb(webOptions: ", username: viewer, password: secret, allowed-origins: [\"*\"]",
                                             authorization: authorization)
        defer { run.process.terminate() }
        let script = repositoryRoot.appendingPathComponent("Tests/Browser/browser_check.py").path
        let check = try CamflowProcess([script, "webrtc", "other-origin", "--whep",
                                        "http://127.0.0.1:\(port)/whep/replay", "--authorization", authorization,
                                        "--frames", "10", "--timeout", "45"], executable: "/usr/bin/python3")
        #expect(try await check.waitForExit(timeout: .seconds(90)) == 0, "\(check.stderr)")
        let result = try #require(try JSONSerialization.jsonObject(with: Data(check.stdout.utf8)) as? [String: Any])
        let origin = try #require(result["pageOrigin"] as? String)
        #expect(origin.hasPrefix("http://127.0.0.1:") && origin != "http://127.0.0.1:\(port)", "\(origin)")
        #expect(result["postStatus"] as? Int == 201, "\(result)")
        #expect(result["framesDecoded"] as? Int ?? 0 >= 10, "\(result)")
        #expect(result["frameWidth"] as? Int == 320)
        #expect((result["location"] as? String)?.hasPrefix("http://127.0.0.1:\(port)/whep/replay/") == true, "the page read Location")
        #expect(result["deleteStatus"] as? Int == 200)
    }

    @Test func whep_needsTheSinksCredentials() async throws {
        let authorization = "Basic " + Data("viewer:secret".utf8).base64EncodedString()
        let (run, port) = try await startWeb(webOptions: ", username: viewer, password: secret", authorization: authorization)
        defer { run.process.terminate() }
        #expect(try await whepRequest(port: port, method: "POST", "/whep/replay", body: "v=0\r\n").status == 401)
        #expect(try await whepRequest(port: port, method: "DELETE", "/whep/replay/00000000000000000000000000000000").status == 401)
        // With them, the offer is read (and this one has no video to answer).
        let answered = try await whepRequest(port: port, method: "POST", "/whep/replay", body: "v=0\r\n", authorization: authorization)
        #expect(answered.status == 406, "\(answered)")
    }

    @Test func whep_fromAnAllowedOrigin_preflightWithoutCredentials_andCORSHeaders() async throws {
        let authorization = "Basic " + Data("viewer:secret".utf8).base64EncodedString()
        let (run, port) = try await startWeb(webOptions: ", username: viewer, password: secret, allowed-origins: [\"http://player.example\"]",
                                             authorization: authorization)
        defer { run.process.terminate() }
        let ask = ["Access-Control-Request-Method: POST", "Access-Control-Request-Headers: authorization, content-type"]
        let preflight = try await whepRequest(port: port, method: "OPTIONS", "/whep/replay",
                                              headers: ["Origin: http://player.example"] + ask)
        #expect(preflight.status == 204, "\(preflight)")
        let head = preflight.head.lowercased()
        #expect(head.contains("access-control-allow-origin: http://player.example"))
        #expect(head.contains("access-control-allow-methods: post, delete, options"))
        #expect(head.contains("access-control-allow-headers: authorization, content-type"))
        let elsewhere = try await whepRequest(port: port, method: "OPTIONS", "/whep/replay",
                                              headers: ["Origin: http://elsewhere.example"] + ask)
        #expect(elsewhere.status == 403)
        let answered = try await whepRequest(port: port, method: "POST", "/whep/replay", body: "v=0\r\n", authorization: authorization,
                                             headers: ["Origin: http://player.example"])
        #expect(answered.status == 406)
        #expect(answered.head.lowercased().contains("access-control-allow-origin: http://player.example"), "\(answered.head)")
        #expect(answered.head.lowercased().contains("access-control-expose-headers: location"))
        // Without credentials: the 401 is readable by that page (CORS headers on it too).
        let refused = try await whepRequest(port: port, method: "POST", "/whep/replay", body: "v=0\r\n",
                                            headers: ["Origin: http://player.example"])
        #expect(refused.status == 401)
        #expect(refused.head.lowercased().contains("access-control-allow-origin: http://player.example"), "\(refused.head)")
        // Other routes still need the credentials for OPTIONS.
        #expect(try await whepRequest(port: port, method: "OPTIONS", "/api/stats", headers: ["Origin: http://player.example"]).status == 401)
    }

    @Test func webrtcPublicAddress_mustBeAnIPAddress() async throws {
        for (address, valid) in [("camera.local", false), ("203.0.113.7:x", false), ("203.0.113.7", true), ("203.0.113.7:40000", true),
                                 ("[2001:db8::7]:40000", true)] {
            let pipeline = try temporaryPipeline("""
                nodes:
                  replay: { type: file-replay, path: "\(repositoryRoot.path)/Tests/Fixtures/h264-baseline.mp4" }
                  parse: { type: mp4-parse, inputs: [replay] }
                  web: { type: web, inputs: [parse], webrtc-public-address: "\(address)" }
                """)
            let result = try await camflow("validate", pipeline)
            #expect((result.status == 0) == valid, "\(address): \(result.stderr)")
            if !valid { #expect(result.stderr.contains("webrtc-public-address"), "\(result.stderr)") }
        }
    }

    @Test func whep_refusesAStreamWithBFrames() async throws {
        let (run, port) = try await startWeb(fixture: "h264-main-aac.mp4")
        defer { run.process.terminate() }
        let response = try await whepRequest(port: port, method: "POST", "/whep/replay", body: "v=0\r\n")
        #expect(response.status == 406 && response.body.contains("B-frames"), "\(response)")
    }

    @Test func aWebRTCPortInUse_leavesWHEPAt503_andTheRestServing() async throws {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        try #require(socket >= 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0 }
        }
        try #require(bound)
        let taken = Int(UInt16(bigEndian: address.sin_port))
        let (run, port) = try await startWeb(webrtcPort: taken)
        defer { run.process.terminate() }
        #expect(run.stderr.contains("cannot serve WebRTC on udp port \(taken)"), "\(run.stderr)")
        let response = try await whepRequest(port: port, method: "POST", "/whep/replay", body: "v=0\r\n")
        #expect(response.status == 503 && response.body.contains("WebRTC is unavailable"), "\(response)")
        #expect(try await rawHTTP(port: port, "/healthz").status == 200)
    }

    /// One request with a body over a plain socket, off the cooperative pool.
    func whepRequest(port: Int, method: String, _ path: String, contentType: String = "application/sdp",
                     body: String = "", authorization: String? = nil,
                     headers: [String] = []) async throws -> (status: Int, head: String, body: String) {
        try await BlockingIOThread.run(name: "test whep") {
            let fd = try connectTCP(port: port)
            defer { close(fd) }
            let request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
                + (authorization.map { "Authorization: \($0)\r\n" } ?? "") + headers.map { $0 + "\r\n" }.joined()
                + (body.isEmpty ? "" : "Content-Type: \(contentType)\r\nContent-Length: \(body.utf8.count)\r\n") + "\r\n" + body
            _ = request.withCString { send(fd, $0, strlen($0), 0) }
            var received: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while case let count = recv(fd, &chunk, chunk.count, 0), count > 0 { received += chunk[..<count] }
            let text = String(decoding: received, as: UTF8.self)
            let status = text.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
            let parts = text.components(separatedBy: "\r\n\r\n")
            return (status, parts.first ?? "", parts.dropFirst().joined(separator: "\r\n\r\n"))
        }
    }
}
