import CamflowTesting
import Foundation
import Testing

/// The repository root, found from this file.
let cameraRepositoryRoot = repositoryFile("Package.swift").deletingLastPathComponent()

/// The `camflow` binary next to the test bundle, or `CAMFLOW_BIN`.
let cameraTestBinary: String = {
    if let path = ProcessInfo.processInfo.environment["CAMFLOW_BIN"] { return path }
    let bundleDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [bundleDir, bundleDir.deletingLastPathComponent()] {
        let path = candidate.appendingPathComponent("camflow").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return cameraRepositoryRoot.appendingPathComponent(".build/debug/camflow").path
}()

/// A process of a camera test (camflow, a server script) with its output in files.
final class CameraTestProcess: @unchecked Sendable {
    let process = Process()
    let directory: URL
    let stdoutURL: URL
    let stderrURL: URL

    init(_ arguments: [String], executable: String = cameraTestBinary) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-camera-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        stdoutURL = directory.appendingPathComponent("stdout")
        stderrURL = directory.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = cameraRepositoryRoot
        process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    deinit {
        if process.isRunning { process.terminate() }
    }

    var stdout: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }

    /// Waits until `condition` holds, at most `timeout`; fails the test after that.
    func wait(_ what: String, timeout: Duration = .seconds(60), until condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            if ContinuousClock.now > deadline {
                Issue.record("timed out waiting for \(what); stderr:\n\(stderr.suffix(3000))")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func waitForExit(timeout: Duration = .seconds(60)) async throws -> Int32 {
        try await wait("the process to exit", timeout: timeout) { !process.isRunning }
        return process.terminationStatus
    }
}

/// GStreamer's RTSP server (Tests/Peers/gst_rtsp_server.py) serving a fixture; its URL.
func gstreamerServer(_ fixture: String, port: Int = 0, extra: [String] = []) async throws -> (CameraTestProcess, String) {
    let server = try CameraTestProcess(["Tests/Peers/gst_rtsp_server.py", "--port", "\(port)", "--file", "Tests/Fixtures/\(fixture)"] + extra,
                                       executable: "/usr/bin/python3")
    try await server.wait("the GStreamer server", timeout: .seconds(30)) { server.stdout.hasPrefix("ready ") || !server.process.isRunning }
    let line = server.stdout.split(separator: "\n").first ?? ""
    guard line.hasPrefix("ready ") else {
        Issue.record("the GStreamer server did not start: \(server.stderr)")
        throw CancellationError()
    }
    return (server, String(line.dropFirst("ready ".count)))
}

/// A pipeline file in a fresh temporary directory.
func cameraPipeline(_ text: String) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-camera-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let path = dir.appendingPathComponent("pipeline.yaml").path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

/// Finished or in-progress recordings under `root`.
func cameraRecordings(_ root: String, suffix: String = ".mp4") -> [String] {
    (FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String } ?? [])
        .filter { $0.hasSuffix(suffix) }.map { root + "/" + $0 }.sorted()
}

/// ffprobe's decoded frame count per stream kind, and ffmpeg's error lines.
func cameraInspect(_ path: String) async throws -> (video: Int, audio: Int, codec: String, size: String, errors: String) {
    let errors = try await runTool("/usr/bin/ffmpeg", ["-v", "error", "-i", path, "-f", "null", "-"]).stderr
    let rows = try await runTool("/usr/bin/ffprobe", ["-v", "error", "-count_frames", "-show_entries",
                                                     "stream=codec_type,codec_name,width,height,nb_read_frames", "-of", "csv=p=0", path]).stdout
        .split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    var video = 0, audio = 0, codec = "", size = ""
    for row in rows where row.count >= 3 {
        if row[1] == "video", row.count >= 5 {
            codec = row[0]
            size = "\(row[2])x\(row[3])"
            video += Int(row[4]) ?? 0
        } else if row[1] == "audio" {
            audio += Int(row.last ?? "") ?? 0
        }
    }
    return (video, audio, codec, size, errors)
}
