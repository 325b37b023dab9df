import Camflow
import CamflowTesting
import Foundation
import Testing

/// `camflow run` of a pipeline ending in an `rtsp` node bound to an
/// ephemeral port on 127.0.0.1, stopped when the test is done with it.
final class RTSPServerProcess: @unchecked Sendable {
    let process = Process()
    let stderrURL: URL
    private(set) var port = 0

    /// Replays `fixture` live (looped) through mp4-parse into `rtsp` with `options`.
    init(fixture: String, stream: String = "cam1", options: String = "", extraNodes: String = "") throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-rtsp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let pipeline = dir.appendingPathComponent("pipeline.yaml")
        try """
            name: rtsp-test
            nodes:
              \(stream): { type: file-replay, path: \(repositoryFile("Tests/Fixtures/\(fixture)").path), loop: true, realtime: true }
              parse: { type: mp4-parse, inputs: [\(stream)] }
              rtsp: { type: rtsp, inputs: [parse], bind: "127.0.0.1:0"\(options.isEmpty ? "" : ", " + options) }
            \(extraNodes)
            """.write(to: pipeline, atomically: true, encoding: .utf8)
        stderrURL = dir.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: camflowTestBinary)
        process.arguments = ["run", pipeline.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    deinit {
        if process.isRunning { process.terminate() }
    }

    var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }

    /// Waits (bounded) until the stream is served; returns its URL.
    func waitUntilServing(_ stream: String = "cam1", timeout: Duration = .seconds(30)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while true {
            for line in stderr.split(separator: "\n") {
                guard let range = line.range(of: "serving rtsp://127.0.0.1:"), line.hasSuffix("/\(stream)") else { continue }
                let rest = line[range.upperBound...]
                if let port = Int(rest.prefix { $0.isNumber }) {
                    self.port = port
                    return "rtsp://127.0.0.1:\(port)/\(stream)"
                }
            }
            guard ContinuousClock.now < deadline, process.isRunning else {
                Issue.record("the rtsp node did not serve \(stream); stderr:\n\(stderr)")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits (bounded) for a log line holding `text`; returns the line.
    func waitForLine(containing text: String, timeout: Duration = .seconds(30)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let line = stderr.split(separator: "\n").first(where: { $0.contains(text) }) { return String(line) }
            guard ContinuousClock.now < deadline, process.isRunning else {
                Issue.record("no line with '\(text)'; stderr:\n\(stderr)")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func stop() {
        if process.isRunning { process.terminate() }
    }
}

/// ffprobe's streams as `codec_name|width|height|r_frame_rate|sample_rate` lines.
func probe(_ url: String, transport: String, extra: [String] = []) async throws -> (status: Int32, streams: [String], stderr: String) {
    let result = try await runTool("/usr/bin/timeout", ["30", "ffprobe", "-v", "error", "-rtsp_transport", transport] + extra + [
        "-show_entries", "stream=codec_name,width,height,r_frame_rate,sample_rate", "-of", "csv=p=0", url,
    ])
    return (result.status, result.stdout.split(separator: "\n").map(String.init), result.stderr)
}

/// Decodes `seconds` of the stream; ffmpeg's error lines (`-v error`).
func decode(_ url: String, transport: String, seconds: Int = 3) async throws -> (status: Int32, errors: String) {
    let result = try await runTool("/usr/bin/timeout", ["40", "ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", transport,
                                                        "-i", url, "-t", "\(seconds)", "-f", "null", "-"])
    return (result.status, result.stderr)
}

/// Runs a short Python script (raw sockets for hostile clients), bounded.
func python(_ script: String, _ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
    try await runTool("/usr/bin/timeout", ["40", "python3", "-c", script] + arguments)
}
