import CamflowTesting
import Camflow
import Foundation
import Testing

/// The repository root, found from this file.
let repositoryRoot = repositoryFile("Package.swift").deletingLastPathComponent()

/// The `camflow` binary `make test` built: next to the test bundle, or `CAMFLOW_BIN`.
let camflowBinary: String = {
    if let path = ProcessInfo.processInfo.environment["CAMFLOW_BIN"] { return path }
    let bundleDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [bundleDir, bundleDir.deletingLastPathComponent()] {
        let path = candidate.appendingPathComponent("camflow").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return repositoryRoot.appendingPathComponent(".build/debug/camflow").path
}()

/// A running `camflow` process with its output captured in files.
final class CamflowProcess: @unchecked Sendable {
    let process = Process()
    let stdoutURL: URL
    let stderrURL: URL

    /// Starts `executable` (camflow unless given) with `arguments`.
    init(_ arguments: [String], environment: [String: String] = [:], executable: String? = nil,
         directory: URL = repositoryRoot) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        stdoutURL = dir.appendingPathComponent("stdout")
        stderrURL = dir.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable ?? camflowBinary)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    /// A process a failed test left running is stopped, so none outlives the run.
    deinit {
        if process.isRunning { process.terminate() }
    }

    var stdout: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }

    /// Waits for exit, at most `timeout`; kills the process and fails after that.
    func waitForExit(timeout: Duration = .seconds(60)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now > deadline {
                process.terminate()
                Issue.record("camflow did not exit within \(timeout); stderr:\n\(stderr)")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        return process.terminationStatus
    }

    /// Waits until a line of stdout (or stderr, where logs go) satisfies `condition`.
    func waitForLine(timeout: Duration = .seconds(60), inStderr: Bool = false,
                     where condition: (Substring) -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !(inStderr ? stderr : stdout).split(separator: "\n").contains(where: condition) {
            if ContinuousClock.now > deadline || !process.isRunning {
                Issue.record("camflow printed no such line; stderr:\n\(stderr)")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Waits until stdout holds `lines` lines.
    func waitForOutput(lines: Int, timeout: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + timeout
        while stdout.split(separator: "\n").count < lines {
            if ContinuousClock.now > deadline || !process.isRunning {
                Issue.record("camflow printed fewer than \(lines) lines; stderr:\n\(stderr)")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}

/// Runs camflow to completion.
func camflow(_ arguments: String..., environment: [String: String] = [:]) async throws
    -> (status: Int32, stdout: String, stderr: String)
{
    let process = try CamflowProcess(arguments, environment: environment)
    let status = try await process.waitForExit()
    return (status, process.stdout, process.stderr)
}

/// Writes `text` to a temporary `.yaml` file.
func temporaryPipeline(_ text: String, name: String = "pipeline.yaml") throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-yaml-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let path = dir.appendingPathComponent(name).path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

/// The counters of one node row in the summary table printed at exit.
func summaryRow(_ stderr: String, node: String) -> (packetsIn: Int, packetsOut: Int, dropped: Int)? {
    for line in stderr.split(separator: "\n") {
        let cells = line.split(separator: " ", omittingEmptySubsequences: true)
        guard cells.count >= 9, cells[0] == node else { continue }
        // node type in out bytes-in(2 cells) bytes-out(2 cells) pkt/s dropped restarts
        guard let input = Int(cells[2]), let output = Int(cells[3]), let dropped = Int(cells[cells.count - 2]) else {
            continue
        }
        return (input, output, dropped)
    }
    return nil
}
