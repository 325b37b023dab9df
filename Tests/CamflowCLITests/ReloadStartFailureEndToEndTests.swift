import Foundation
import Testing

/// A reload whose new node cannot start (its port is taken), through the
/// binary: reported, and the running graph runs on.
@Suite struct ReloadStartFailureEndToEndTests {
    /// A listening socket on 127.0.0.1 that keeps its port busy while it lives.
    private final class BusyPort {
        let fd: Int32
        let port: Int
        init() throws {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            self.fd = fd
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                    bind(fd, address, length) == 0 && listen(fd, 1) == 0 && getsockname(fd, address, &length) == 0
                }
            }
            guard bound else { throw CocoaError(.fileWriteUnknown) }
            port = Int(UInt16(bigEndian: address.sin_port))
        }
        deinit { close(fd) }
    }

    @Test func aWebNodeAddedOnABusyPort_isReported_andTheRestFlowsOn() async throws {
        let busy = try BusyPort()
        let fixture = repositoryRoot.appendingPathComponent("Tests/Fixtures/h264-main-aac.mp4").path
        func text(web: Bool) -> String {
            """
            nodes:
              replay: { type: file-replay, path: "\(fixture)", loop: true, rate: 200KiB/s }
              parse: { type: mp4-parse, inputs: [replay] }
              events: { type: pipeline-events }
              log: { type: log, inputs: [parse, events], format: json }
            """ + (web ? "\n  web: { type: web, inputs: [parse], bind: \"127.0.0.1:\(busy.port)\" }\n" : "\n")
        }
        let file = try temporaryPipeline(text(web: false))
        let run = try CamflowProcess(["run", file, "--status-interval", "0"])
        defer { run.process.terminate() }
        try await run.waitForLine { $0.hasPrefix("{\"stream\":\"replay\"") }

        try text(web: true).write(toFile: file, atomically: true, encoding: .utf8)
        kill(run.process.processIdentifier, SIGHUP)
        try await run.waitForLine(timeout: .seconds(20), inStderr: true) {
            $0.contains("reload: node 'web' (web) failed") && $0.contains("the rest of the graph runs on")
        }
        try await run.waitForLine(timeout: .seconds(20)) {
            $0.contains(#""event":"reload""#) && $0.contains(#""failed":"web""#) && $0.contains(#""added":1"#)
        }
        // The process is up and the other nodes still flow.
        let before = run.stdout.split(separator: "\n").count
        try await run.waitForOutput(lines: before + 20, timeout: .seconds(20))
        #expect(run.process.isRunning)

        run.process.interrupt()
        #expect(try await run.waitForExit() == 0, "\(run.stderr)")
    }
}
