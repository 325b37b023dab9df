import Camflow
import Foundation

/// Runs an external program (ffmpeg, ffprobe, a script) to its end: exit
/// status and what it printed. Reading its output and waiting for its exit
/// block, so they run on a thread of their own: on the cooperative pool,
/// which has one thread per core, they would stall every test running beside
/// this one for as long as the program runs.
public func runTool(_ path: String, _ arguments: [String]) async throws
    -> (status: Int32, stdout: String, stderr: String)
{
    try await BlockingIOThread.run(name: "test \(URL(fileURLWithPath: path).lastPathComponent)") {
        try runToolBlocking(path, arguments)
    }
}

/// ``runTool(_:_:)`` on the calling thread. Only for a probe a test's trait
/// makes while the tests are being found, before any of them runs; never
/// from a test.
public func runToolBlocking(_ path: String, _ arguments: [String]) throws
    -> (status: Int32, stdout: String, stderr: String)
{
    // stderr goes to a file: with two pipes read one after the other, a
    // program that fills the second before closing the first never ends.
    let errorFile = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-tool-\(UUID().uuidString)")
    guard FileManager.default.createFile(atPath: errorFile.path, contents: nil) else {
        throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: errorFile.path])
    }
    defer { try? FileManager.default.removeItem(at: errorFile) }
    let errorHandle = try FileHandle(forWritingTo: errorFile)
    defer { try? errorHandle.close() }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let out = Pipe()
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = out
    process.standardError = errorHandle
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let stderr = (try? Data(contentsOf: errorFile)) ?? Data()
    return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
}
