import Foundation

/// This binary run again as a child (`camflow sim`, `camflow run`), with its
/// output in a file, so a benchmark measures its own process's CPU alone.
final class ChildProcess {
    let process = Process()
    let output: URL

    /// - Parameter executable: this binary unless told (another camflow, python3).
    init(_ arguments: [String], executable: String = "/proc/self/exe") throws {
        output = FileManager.default.temporaryDirectory
            .appendingPathComponent("camflow-bench-\(getpid())-\(UUID().uuidString).out")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: output)
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    deinit {
        if process.isRunning { process.terminate() }
        try? FileManager.default.removeItem(at: output)
    }

    var lines: [Substring] { ((try? String(contentsOf: output, encoding: .utf8)) ?? "").split(separator: "\n") }

    /// Waits up to a minute for a line that starts with `prefix`.
    func waitForLine(startingWith prefix: String) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while !lines.contains(where: { $0.hasPrefix(prefix) }) {
            guard ContinuousClock.now < deadline, process.isRunning else {
                throw BenchmarkError(message: "\(process.arguments?.first ?? "child") did not start")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// `camflow sim` serving `media`; returns the camera URLs and the timeline origin.
    static func simulator(media: String, cameras: Int) async throws -> (ChildProcess, urls: [String], origin: UInt64) {
        let simulator = try ChildProcess(["sim", "--port", "0", "--cameras", "\(cameras)", "--media", media,
                                          "--log-level", "error"])
        try await simulator.waitForLine(startingWith: "timeline-origin-ns: ")
        let lines = simulator.lines
        let urls = lines.filter { $0.hasPrefix("camera ") }.compactMap { $0.split(separator: " ").last.map(String.init) }
        let origin = lines.first { $0.hasPrefix("timeline-origin-ns: ") }.flatMap { UInt64($0.dropFirst(20)) } ?? 0
        return (simulator, urls, origin)
    }
}
