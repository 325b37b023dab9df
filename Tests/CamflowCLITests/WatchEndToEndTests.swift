import CamflowTesting
import Foundation
import Testing

/// `camflow run --watch` sees an edit through the system's file notices
/// (inotify), including an editor's save by rename, and still exits at once
/// on Ctrl-C with the watch waiting.
@Suite struct WatchEndToEndTests {
    @Test func anEditSavedByRename_isReloaded_andCtrlCEndsTheWatch() async throws {
        let fixture = repositoryRoot.appendingPathComponent("Tests/Fixtures/h264-main-aac.mp4").path
        func text(_ format: String) -> String {
            """
            nodes:
              replay: { type: file-replay, path: "\(fixture)", loop: true, rate: 200KiB/s }
              parse: { type: mp4-parse, inputs: [replay] }
              log: { type: log, inputs: [parse], format: \(format) }
            """
        }
        let file = try temporaryPipeline(text("text"))
        let run = try CamflowProcess(["run", file, "--watch", "--status-interval", "0"])
        defer { run.process.terminate() }
        try await run.waitForLine { $0.hasPrefix("replay ") }
        // `atomically`: written to a temporary file, then renamed over the pipeline file, as editors save.
        let edited = ContinuousClock.now
        try text("json").write(toFile: file, atomically: true, encoding: .utf8)
        try await run.waitForLine(timeout: .seconds(20), inStderr: true) { $0.contains("reload: kept 2, replaced 1 (log), added 0, removed 0") }
        #expect(ContinuousClock.now - edited < .seconds(5), "reloaded \(ContinuousClock.now - edited) after the edit")
        try await run.waitForLine(timeout: .seconds(20)) { $0.hasPrefix("{\"stream\":\"replay\"") }
        // Written in place too (truncate and write), as other tools save.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: Data(text("text").utf8))
        try handle.close()
        try await waitUntil("a second reload", timeout: .seconds(20)) {
            run.stderr.components(separatedBy: "reload: kept 2, replaced 1 (log)").count == 3
        }
        let stopped = ContinuousClock.now
        run.process.interrupt()
        #expect(try await run.waitForExit() == 0, "\(run.stderr)")
        #expect(ContinuousClock.now - stopped < .seconds(10), "the watch let the process end")
    }

    @Test func aFileAnEditBringsIn_fromAnotherDirectory_isWatchedToo() async throws {
        let fixture = repositoryRoot.appendingPathComponent("Tests/Fixtures/h264-main-aac.mp4").path
        let other = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-include-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        let included = other + "/tail.yaml"
        func tail(_ format: String) -> String {
            """
            name: tail
            input: parse
            output: parse
            nodes:
              parse: { type: mp4-parse }
              log: { type: log, inputs: [parse], format: \(format) }
            """
        }
        try tail("text").write(toFile: included, atomically: true, encoding: .utf8)
        let plain = """
            nodes:
              replay: { type: file-replay, path: "\(fixture)", loop: true, rate: 200KiB/s }
              log: { type: log, inputs: [replay] }
            """
        let file = try temporaryPipeline(plain)
        let run = try CamflowProcess(["run", file, "--watch", "--status-interval", "0"])
        defer { run.process.terminate() }
        try await run.waitForLine { $0.hasPrefix("replay ") }
        // The edit includes a file from a directory nobody watched so far.
        try """
            nodes:
              replay: { type: file-replay, path: "\(fixture)", loop: true, rate: 200KiB/s }
              tail: { type: graph, file: "\(included)", inputs: [replay] }
            """.write(toFile: file, atomically: true, encoding: .utf8)
        try await waitUntil("the edit is reloaded", timeout: .seconds(20)) { run.stderr.contains("reload: ") }
        let reloads = run.stderr.components(separatedBy: "reload: ").count
        // Then only the included file changes: its directory must be watched by now.
        try tail("json").write(toFile: included, atomically: true, encoding: .utf8)
        try await waitUntil("the included file's edit is reloaded", timeout: .seconds(20)) {
            run.stderr.components(separatedBy: "reload: ").count > reloads
        }
        run.process.interrupt()
        #expect(try await run.waitForExit() == 0, "\(run.stderr)")
    }
}
