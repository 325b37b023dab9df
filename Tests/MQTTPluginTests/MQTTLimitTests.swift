import Camflow
import CamflowTesting
import Foundation
import Testing

/// The payload limit against the real broker and the real binary: with
/// MQTT 5 the broker never sends camflow a message over it.
@Suite(.serialized) struct MQTTLimitTests {
    /// The `camflow` binary next to the test bundle, or `CAMFLOW_BIN`.
    private static let binary: String = {
        if let path = ProcessInfo.processInfo.environment["CAMFLOW_BIN"] { return path }
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for directory in [bundle, bundle.deletingLastPathComponent()] where FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("camflow").path) {
            return directory.appendingPathComponent("camflow").path
        }
        return repositoryFile(".build/debug/camflow").path
    }()

    /// The most resident memory `pid` has held, in bytes (VmHWM).
    private static func peakRSS(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? ""
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
    }

    private static func publish(_ port: Int, _ arguments: [String]) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/mosquitto_pub")
        process.arguments = ["-h", "127.0.0.1", "-p", "\(port)", "-q", "1"] + arguments
        // Waited for on a thread of its own, not on one of the shared pool's.
        try await BlockingIOThread.run(name: "test-mosquitto-pub") {
            try process.run()
            process.waitUntilExit()
        }
        try #require(process.terminationStatus == 0, "mosquitto_pub \(arguments.prefix(2)) failed")
    }

    @Test(arguments: ["5", "3.1.1"])
    func aMessageOverTheLimit_neverReachesCamflow_andTheNextOneDoes(_ version: String) async throws {
        try #require(MosquittoBroker.isInstalled && FileManager.default.isExecutableFile(atPath: "/usr/bin/mosquitto_pub"),
                     "needs Debian's mosquitto and mosquitto-clients")
        let broker = try await MosquittoBroker()
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-mqtt-limit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let big = scratch.appendingPathComponent("big")
        let size = 48 << 20
        // 48 MiB to the disk: written on a thread of its own, not on the pool the tests share.
        try await BlockingIOThread.run(name: "test big payload") { try Data(repeating: 0x61, count: size).write(to: big) }
        let pipeline = scratch.appendingPathComponent("limit.yaml")
        try """
            nodes:
              sub: { type: mqtt-subscribe, broker: "\(broker.url)", topics: ["big/#"], max-payload: 64KiB, protocol: "\(version)" }
              log: { type: log, inputs: [sub], format: json }
            """.write(to: pipeline, atomically: true, encoding: .utf8)
        let stdout = scratch.appendingPathComponent("stdout"), stderr = scratch.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: stdout.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderr.path, contents: nil)
        let camflow = Process()
        camflow.executableURL = URL(fileURLWithPath: Self.binary)
        camflow.arguments = ["run", pipeline.path, "--status-interval", "0"]
        camflow.standardOutput = try FileHandle(forWritingTo: stdout)
        camflow.standardError = try FileHandle(forWritingTo: stderr)
        try camflow.run()
        defer { if camflow.isRunning { camflow.terminate() } }
        func read(_ url: URL) -> String { (try? String(contentsOf: url, encoding: .utf8)) ?? "" }
        try await waitUntil("camflow connects to the broker", timeout: .seconds(30)) { read(stderr).contains("connected to MQTT broker") }
        // A first small message: the subscription is in place, and the memory a message costs is spent.
        try await Self.publish(broker.port, ["-t", "big/warm", "-m", "warm"])
        try await waitUntil("the first small message", timeout: .seconds(30)) { read(stdout).contains("big/warm") }
        let before = Self.peakRSS(camflow.processIdentifier)
        try await Self.publish(broker.port, ["-t", "big/huge", "-f", big.path])
        try await Self.publish(broker.port, ["-t", "big/after", "-m", "after-the-big-one"])
        try await waitUntil("the small message after the big one", timeout: .seconds(60)) { read(stdout).contains("after-the-big-one") }
        let grown = Self.peakRSS(camflow.processIdentifier) - before
        #expect(!read(stdout).contains("big/huge"), "the big message never became an event")
        if version == "5" {
            #expect(grown < size / 4, "peak memory grew by \(grown >> 20) MiB for a \(size >> 20) MiB message the broker should have dropped")
            #expect(broker.log.isEmpty || !broker.log.contains("Protocol error"), "\(broker.log)")
        } else {
            // 3.1.1 cannot say the limit: the message arrives whole and is dropped, and that is said.
            #expect(read(stderr).contains("dropped 1 MQTT message(s)"), "\(read(stderr))")
        }
        print("MQTT \(version): peak RSS grew by \(grown >> 10) KiB for a \(size >> 20) MiB message")
    }
}
