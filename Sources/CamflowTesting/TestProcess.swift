public import Foundation

/// The repository the tests belong to.
public let repositoryRoot = repositoryFile("Package.swift").deletingLastPathComponent()

/// The `camflow` binary the build made: next to the test bundle, or `CAMFLOW_BIN`.
public let camflowTestBinary: String = {
    if let path = ProcessInfo.processInfo.environment["CAMFLOW_BIN"] { return path }
    let bundleDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [bundleDir, bundleDir.deletingLastPathComponent()] {
        let path = candidate.appendingPathComponent("camflow").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return repositoryRoot.appendingPathComponent(".build/debug/camflow").path
}()

/// What a test waited for did not come in time (or the process ended first);
/// the process's last output is in the description, which the test prints.
public struct TestProcessTimeout: Error, CustomStringConvertible {
    public let description: String
}

/// A process an end-to-end test runs (camflow, a peer script), its output
/// in files of its own so nothing blocks on a full pipe, stopped at the
/// latest when the test lets go of it. Its waits are bounded polls of the
/// files: a test waits on a condition, never a fixed time.
public final class TestProcess: @unchecked Sendable {
    public let process = Process()
    /// A fresh temporary directory holding the output files; the test may put its own files there.
    public let outputDirectory: URL
    public let stdoutURL: URL
    public let stderrURL: URL

    /// Starts `executable` (camflow unless given) with `arguments` in `directory`.
    public init(_ arguments: [String], environment: [String: String] = [:], executable: String? = nil,
                directory: URL = repositoryRoot) throws {
        outputDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: outputDirectory, withIntermediateDirectories: true)
        stdoutURL = outputDirectory.appendingPathComponent("stdout")
        stderrURL = outputDirectory.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable ?? camflowTestBinary)
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

    public var stdout: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }
    public var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }

    /// Waits until `condition` holds, at most `timeout`; throws after that,
    /// or as soon as the process ended without it when `whileRunning`.
    public func wait(_ what: String, timeout: Duration = .seconds(60), whileRunning: Bool = false,
                     until condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            if ContinuousClock.now > deadline || (whileRunning && !process.isRunning && !condition()) {
                throw TestProcessTimeout(description: "\(ContinuousClock.now > deadline ? "timed out waiting for" : "the process ended before")"
                    + " \(what); stderr:\n\(stderr.suffix(3000))")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Waits for exit, at most `timeout`; stops the process and throws after that.
    public func waitForExit(timeout: Duration = .seconds(60)) async throws -> Int32 {
        do {
            try await wait("the process to exit", timeout: timeout) { !process.isRunning }
        } catch {
            process.terminate()
            throw error
        }
        return process.terminationStatus
    }

    /// Waits until a line of stdout (or stderr, where logs go) satisfies `condition`.
    public func waitForLine(timeout: Duration = .seconds(60), inStderr: Bool = false,
                            where condition: (Substring) -> Bool) async throws {
        try await wait("such a line", timeout: timeout, whileRunning: true) {
            (inStderr ? stderr : stdout).split(separator: "\n").contains(where: condition)
        }
    }

    /// Waits until stdout holds `lines` lines.
    public func waitForOutput(lines: Int, timeout: Duration = .seconds(60)) async throws {
        try await wait("\(lines) lines of output", timeout: timeout, whileRunning: true) {
            stdout.split(separator: "\n").count >= lines
        }
    }

    /// Stops the process (SIGTERM) if it runs.
    public func stop() {
        if process.isRunning { process.terminate() }
    }
}
