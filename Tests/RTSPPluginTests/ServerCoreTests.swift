import CamflowTesting
import Foundation
import NIOCore
import RTSPServer
import Testing

/// The server core through its public API, as the simulator drives it: no
/// engine, a manual clock for the session timeout.
@Suite struct ServerCoreTests {
    static let client = #"""
        import json, os, socket, sys, time
        port, ready = int(sys.argv[1]), sys.argv[2]
        url = "rtsp://127.0.0.1:%d/sim" % port
        def request(s, text):
            s.sendall(text.encode())
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk: return ""
                data += chunk
            return data.decode(errors="replace")
        out = {}
        s = socket.create_connection(("127.0.0.1", port), timeout=20)
        out["describe"] = request(s, "DESCRIBE %s RTSP/1.0\r\nCSeq: 1\r\n\r\n" % url).split("\r\n")[0]
        open(ready, "w").close()
        start = time.monotonic()
        try:
            while s.recv(65536): pass
            out["closedAfter"] = time.monotonic() - start
        except socket.timeout:
            out["closedAfter"] = None
        print(json.dumps(out))
        """#

    @Test func publishedStreamIsServedAndASilentConnectionEndsOnTheClock() async throws {
        let clock = ManualClock()
        var configuration = RTSPServerConfiguration()
        configuration.sessionTimeout = .seconds(60)
        let server = RTSPMediaServer(configuration: configuration, clock: clock)
        let port = try await server.start(host: "127.0.0.1", port: 0)
        let (initSegment, fragments) = try ServerPacketizationTests.segments("h264-main-aac.mp4")
        try server.publish(stream: "sim", initSegment: initSegment)
        for fragment in fragments { try server.publish(stream: "sim", fragment: fragment, keyframe: false) }
        #expect(throws: RTSPMediaError.self) { try server.publish(stream: "other", fragment: fragments[0], keyframe: true) }

        let ready = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-rtsp-ready-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: ready) }
        async let run = python(Self.client, ["\(port)", ready])
        // The client has its answer and waits: only the clock passing the session timeout ends its connection.
        let deadline = ContinuousClock.now + .seconds(20)
        while !FileManager.default.fileExists(atPath: ready), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        try await clock.waitForSleepers(2)
        await clock.advance(by: .seconds(59))
        try await clock.waitForSleepers(2)
        await clock.advance(by: .seconds(2))
        let result = try await run
        let out = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stderr)")
        #expect(out["describe"] as? String == "RTSP/1.0 200 OK")
        #expect(out["closedAfter"] is Double, "closed by the sweeper once the clock passed 60 s: \(out)")

        server.end(stream: "sim")
        await server.shutdown()
    }
}
