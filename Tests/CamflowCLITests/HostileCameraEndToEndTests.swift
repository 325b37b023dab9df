import Foundation
import Testing

/// instar-camera against servers that lie, refuse and flood
/// (Tests/Peers/hostile_camera.py), through the real binary.
@Suite struct HostileCameraEndToEndTests {
    /// Starts the hostile server in `mode` and returns it with its port.
    func hostileCamera(_ mode: String) async throws -> (server: CamflowProcess, port: Int) {
        let server = try CamflowProcess(["Tests/Peers/hostile_camera.py", mode], executable: "/usr/bin/python3")
        try await server.waitForLine(timeout: .seconds(20)) { $0.hasPrefix("listening ") }
        let line = server.stdout.split(separator: "\n").first { $0.hasPrefix("listening ") } ?? ""
        return (server, Int(line.split(separator: " ").last ?? "") ?? 0)
    }

    func cameraPipeline(port: Int, _ options: String) throws -> String {
        try temporaryPipeline("""
            nodes:
              cam: { type: instar-camera, url: "ws://127.0.0.1:\(port)/ws", reconnect-min: 50ms, reconnect-max: 100ms, \(options) }
              log: { type: log, inputs: [cam] }
            """)
    }

    @Test func aWrongAcceptKey_closesTheConnection_andMemoryStaysFlat() async throws {
        let (server, port) = try await hostileCamera("bad-accept")
        defer { server.process.terminate() }
        let run = try CamflowProcess(["run", try cameraPipeline(port: port, "username: admin, password: x"), "--for", "4s"])
        try await server.waitForLine(timeout: .seconds(30)) { $0.hasPrefix("closed after ") }
        let line = server.stdout.split(separator: "\n").first { $0.hasPrefix("closed after ") } ?? ""
        let sent = Int(line.split(separator: " ")[2]) ?? .max
        #expect(sent < 64 << 20, "camflow hung up after \(sent) bytes of a refused upgrade")
        #expect(try await run.waitForExit() == 0, "\(run.stderr)")
        let peak = run.stderr.split(separator: "\n").first { $0.hasPrefix("peak memory ") }
            .flatMap { Double($0.split(separator: " ")[2]) } ?? .infinity
        #expect(peak < 128, "peak memory \(peak) MiB")
        #expect(run.stderr.contains("disconnected") || run.stdout.contains("disconnected"))
    }

    @Test func queryCredentials_neverReachALine_andRefusalsSlowDown() async throws {
        let (server, port) = try await hostileCamera("unauthorized")
        defer { server.process.terminate() }
        let secret = "hunter2-\(UUID().uuidString.prefix(8))"
        let pipeline = try cameraPipeline(port: port, "username: admin, password: \"\(secret)\", auth: query, auth-retry-after: 3")
        let run = try CamflowProcess(["run", pipeline, "--for", "3s"])
        #expect(try await run.waitForExit() == 0, "\(run.stderr)")
        let requests = server.stdout.split(separator: "\n").filter { $0.hasPrefix("request ") }
        #expect(requests.count == 3, "three logins, then one every 5 minutes: \(requests)")
        #expect(requests.allSatisfy { $0.contains("pwd=\(secret)") }, "the credentials went in the query")
        #expect(!run.stdout.contains(secret) && !run.stderr.contains(secret), "the password was printed")
        #expect(run.stderr.contains("refused the credentials 3 times in a row (HTTP 401); trying again every 5m"))
        #expect(run.stdout.contains(" auth-failed status=401 url=ws://127.0.0.1:\(port)/ws"), "\(run.stdout)")
    }

    @Test func errorFloods_areCutEscapedAndCounted() async throws {
        let (server, port) = try await hostileCamera("error-flood")
        defer { server.process.terminate() }
        let run = try CamflowProcess(["run", try cameraPipeline(port: port, "idle-timeout: 30s"), "--for", "3s"])
        try await server.waitForLine(timeout: .seconds(30)) { $0 == "flood sent" }
        #expect(try await run.waitForExit() == 0, "\(run.stderr)")
        let output = run.stderr + run.stdout
        #expect(!output.contains("\u{1B}["), "no escape code reaches the terminal")
        #expect(!output.split(separator: "\n").contains { $0.hasPrefix("2026-01-01T00:00:00 critical") }, "no forged line")
        let said = run.stderr.split(separator: "\n").filter { $0.contains(" says: ") }
        #expect(said.count <= 8, "\(said.count) lines for 1006 messages:\n\(said.joined(separator: "\n"))")
        #expect(said.contains { $0.contains("repeated 999 more times") })
        #expect(said.allSatisfy { $0.count < 1200 }, "a 1 MiB message is cut")
    }
}
