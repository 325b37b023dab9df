import Camflow
import CamflowTesting
import Foundation
import Logging
import RTSPPlugin
import Synchronization
import Testing

/// Keep-alives and TEARDOWN, on a manual clock, against a server that
/// prints every request after PLAY (Tests/Peers/hostile_rtsp_server.py keepalive).
@Suite struct RTSPCameraKeepAliveTests {
    /// Waits (real time, bounded) until `condition` holds.
    func waitUntil(_ what: String, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out waiting until \(what)")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    func requests(_ server: TestProcess) -> [String] {
        server.stdout.split(separator: "\n").filter { $0.hasPrefix("request ") }.map { String($0.dropFirst("request ".count)) }
    }

    @Test func keepAlivesGoAtHalfTheSessionTimeout_andStopSendsTeardown() async throws {
        let server = try TestProcess(["Tests/Peers/hostile_rtsp_server.py", "keepalive"], executable: "/usr/bin/python3")
        defer { server.process.terminate() }
        try await server.wait("the server", timeout: .seconds(20)) { server.stdout.hasPrefix("listening ") }
        let port = server.stdout.split(separator: "\n").first?.split(separator: " ").last.map(String.init) ?? ""
        let clock = ManualClock()
        let registry = TestHarness(plugins: [RTSPPlugin.self]).registry
        let spec = NodeSpec(id: "cam", type: "rtsp-camera", options: [
            "url": .scalar("rtsp://127.0.0.1:\(port)/cam"), "idle-timeout": .scalar("1h")])
        let graph = try GraphValidator(registry: registry).validate(PipelineSpec(name: "keepalive", nodes: [
            spec, NodeSpec(id: "sink", type: "null", inputs: ["cam"])]))
        let pipeline = Pipeline(graph: graph, logger: Logger(label: "keepalive"), metricsInterval: nil, clock: clock)
        let task = Task { try await pipeline.run() }
        try await waitUntil("the camera plays") { server.stdout.contains("playing\n") }
        // The session timeout is 4 s: a keep-alive is due 2 s after the last request.
        try await clock.waitForSleepers(1)
        await clock.advance(by: .milliseconds(1900))
        try await clock.waitForSleepers(1)
        #expect(requests(server).isEmpty, "nothing before it is due: \(requests(server))")
        await clock.advance(by: .milliseconds(200))
        try await waitUntil("a keep-alive is heard") { requests(server) == ["GET_PARAMETER"] }
        try await clock.waitForSleepers(1)
        await clock.advance(by: .milliseconds(2100))
        try await waitUntil("a second keep-alive is heard") { requests(server) == ["GET_PARAMETER", "GET_PARAMETER"] }
        pipeline.requestStop()
        try await task.value
        try await waitUntil("TEARDOWN is heard") { requests(server).last == "TEARDOWN" }
    }

    /// Sockets of this process sending their SYN to 127.0.0.1:`port`, or connected to it (states
    /// 02 and 01 in /proc/net/tcp, matched to this process's descriptors by inode): on a busy
    /// machine the kernel may still take one connect into the full queue, and a stop must be prompt
    /// either way. The server's own fillers of its queue are another process's and never count.
    func connecting(to port: Int) -> Int {
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        let ours = Set(descriptors.compactMap { fd -> Substring? in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)"),
                  target.hasPrefix("socket:[") else { return nil }
            return Substring(target.dropFirst("socket:[".count).dropLast())
        })
        let remote = "0100007F:" + String(format: "%04X", port)
        // Read to its end: /proc/net/tcp reports a size of 0, and a read sized by it stops after its first page.
        let bytes = (try? FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/net/tcp")).readToEnd()) ?? nil
        let table = String(decoding: bytes ?? Data(), as: UTF8.self)
        return table.split(separator: "\n").filter { line in
            let fields = line.split(separator: " ")
            return fields.count > 9 && fields[2] == remote && (fields[3] == "02" || fields[3] == "01") && ours.contains(fields[9])
        }.count
    }

    /// A connect the server never completes: a stop closes the socket at once, not after the connect timeout.
    @Test func aStopDuringAConnect_doesNotWaitForItsTimeout() async throws {
        let server = try TestProcess(["Tests/Peers/hostile_rtsp_server.py", "full-backlog"], executable: "/usr/bin/python3")
        defer { server.process.terminate() }
        try await server.wait("the server", timeout: .seconds(20)) { server.stdout.hasPrefix("listening ") }
        let port = Int(server.stdout.split(separator: "\n").first?.split(separator: " ").last ?? "") ?? 0
        let registry = TestHarness(plugins: [RTSPPlugin.self]).registry
        let spec = NodeSpec(id: "cam", type: "rtsp-camera", options: [
            "url": .scalar("rtsp://127.0.0.1:\(port)/cam"), "connect-timeout": .scalar("60s")])
        let graph = try GraphValidator(registry: registry).validate(PipelineSpec(name: "connect", nodes: [
            spec, NodeSpec(id: "sink", type: "null", inputs: ["cam"])]))
        let pipeline = Pipeline(graph: graph, logger: Logger(label: "connect"), metricsInterval: nil)
        let task = Task { try await pipeline.run() }
        try await waitUntil("the camera is connecting to port \(port)") { connecting(to: port) > 0 }
        let stopped = ContinuousClock.now
        pipeline.requestStop()
        try await task.value
        #expect(ContinuousClock.now - stopped < .seconds(5), "the stop waited \(ContinuousClock.now - stopped)")
        #expect(connecting(to: port) == 0)
    }
}
