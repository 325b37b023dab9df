import CamflowTesting
import Foundation
import Testing

/// rtsp-camera against a server that lies (Tests/Peers/hostile_rtsp_server.py),
/// through the real binary: an error event, bounded memory, reconnects with
/// backoff, and the process runs until it is told to stop.
@Suite struct RTSPCameraHostileTests {
    func hostileServer(_ mode: String) async throws -> (TestProcess, Int) {
        let server = try TestProcess(["Tests/Peers/hostile_rtsp_server.py", mode], executable: "/usr/bin/python3")
        try await server.wait("the hostile server", timeout: .seconds(20)) { server.stdout.hasPrefix("listening ") }
        let line = server.stdout.split(separator: "\n").first ?? ""
        return (server, Int(line.split(separator: " ").last ?? "") ?? 0)
    }

    func run(port: Int, seconds: Int, _ options: String = "") throws -> TestProcess {
        let pipeline = try cameraPipeline("""
            nodes:
              cam: { type: rtsp-camera, url: "rtsp://127.0.0.1:\(port)/cam", reconnect-min: 100ms, reconnect-max: 200ms, \(options) }
              parse: { type: mp4-parse, inputs: [cam] }
              log: { type: log, inputs: [cam] }
            """)
        return try TestProcess(["run", pipeline, "--for", "\(seconds)s"])
    }

    func connections(_ server: TestProcess) -> Int {
        server.stdout.split(separator: "\n").filter { $0.hasPrefix("connection ") }.count
    }

    func peakMemory(_ stderr: String) -> Double {
        stderr.split(separator: "\n").first { $0.hasPrefix("peak memory ") }.flatMap { Double($0.split(separator: " ")[2]) } ?? .infinity
    }

    @Test func aRedirectLoop_stopsAfterThree_andReconnectsLater() async throws {
        let (server, port) = try await hostileServer("redirect-loop")
        defer { server.process.terminate() }
        let camflow = try run(port: port, seconds: 2)
        #expect(try await camflow.waitForExit() == 0, "\(camflow.stderr.suffix(2000))")
        #expect(camflow.stdout.contains(": more than 3 redirects url=rtsp://127.0.0.1:\(port)/cam"), "\(camflow.stdout.suffix(1500))")
        // Each attempt: the first connection and three redirects, then a backoff before the next.
        let attempts = connections(server)
        #expect(attempts >= 8, "\(attempts) connections")
        #expect(attempts < 200, "the backoff holds reconnects back: \(attempts) connections in 2 s")
    }

    @Test func aHeaderTrickle_isCutAtTheResponseTimeout() async throws {
        let (server, port) = try await hostileServer("trickle")
        defer { server.process.terminate() }
        let camflow = try run(port: port, seconds: 3, "response-timeout: 500ms")
        #expect(try await camflow.waitForExit() == 0, "\(camflow.stderr.suffix(2000))")
        #expect(camflow.stdout.contains("disconnected reason=no answer to OPTIONS within 500ms (response timeout)"), "\(camflow.stdout.suffix(1500))")
        #expect(connections(server) >= 2, "it reconnected")
    }

    @Test func endlessFragments_dropTheFrame_memoryStaysBounded_andTheIdleTimeoutReconnects() async throws {
        let (server, port) = try await hostileServer("endless-fu")
        defer { server.process.terminate() }
        let camflow = try run(port: port, seconds: 4, "idle-timeout: 1s")
        #expect(try await camflow.waitForExit() == 0, "\(camflow.stderr.suffix(2000))")
        #expect(camflow.stdout.contains("frame-dropped reason=frameTooLarge(limit: 8388608)"), "\(camflow.stdout.suffix(1500))")
        #expect(camflow.stdout.contains("disconnected reason=no media for 1s (idle timeout)"), "\(camflow.stdout.suffix(1500))")
        #expect(connections(server) >= 2, "it reconnected")
        let streamed = server.stdout.split(separator: "\n").compactMap { $0.hasPrefix("streamed ") ? Int($0.split(separator: " ")[1]) : nil }.max() ?? 0
        #expect(streamed >= 16, "the server streamed \(streamed) MiB")
        #expect(peakMemory(camflow.stderr) < 160, "peak memory \(peakMemory(camflow.stderr)) MiB")
    }
}
