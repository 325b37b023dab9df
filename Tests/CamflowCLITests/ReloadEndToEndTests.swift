import CamflowTesting
import Foundation
import Testing

/// `camflow run --watch`: editing the running pipeline's file, through the
/// binary, with the simulator and a viewer in headless Chromium.
@Suite struct ReloadEndToEndTests {
    private func pipeline(camera: String, recordings: String, reloaded: Bool) -> String {
        """
        name: reload-test
        nodes:
          camera: { type: instar-camera, url: "\(camera)", username: admin, password: instar }
          parse: { type: mp4-parse, inputs: [camera] }
          keyframes: { type: keyframes, inputs: [parse] }
          web: { type: web, inputs: [keyframes], bind: "127.0.0.1:0" }
        """ + (reloaded ? """

          stats: { type: stats, inputs: [keyframes], interval: 1s }
          log: { type: log, inputs: [keyframes, stats], format: json }
        """ : """

          log: { type: log, inputs: [keyframes], format: text }
          record: { type: file-record, inputs: [keyframes], path: "\(recordings)/{stream}/%H%M%S.mp4" }
        """)
    }

    /// Keyframe event sequence numbers in the log's text and JSON lines.
    private func keyframeSequences(_ stdout: String) -> [Int] {
        stdout.split(separator: "\n").compactMap { line -> Int? in
            if line.hasPrefix("{"), let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] {
                return object["event"] as? String == "keyframe" ? object["sequence"] as? Int : nil
            }
            guard line.contains(" keyframe track="), let hash = line.range(of: " event #") else { return nil }
            return Int(line[hash.upperBound...].prefix { $0.isNumber })
        }
    }

    @Test func editingTheFile_changesOnlyWhatChanged_whileTheCameraAndAViewerStay() async throws {
        // Twice real time: a fragment a second, so a new stats node has media to measure within the 2 s asked.
        let sim = try CamflowProcess(["sim", "--port", "0", "--log-level", "info", "--speed", "2"])
        defer { sim.process.terminate() }
        try await sim.waitForLine { $0.hasPrefix("camera 1: ") }
        let cameraLine = try #require(sim.stdout.split(separator: "\n").first { $0.hasPrefix("camera 1: ") })
        let camera = String(cameraLine.dropFirst(10))
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-reload-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let recordings = scratch.appendingPathComponent("recordings").path
        let file = scratch.appendingPathComponent("pipeline.yaml").path
        try pipeline(camera: camera, recordings: recordings, reloaded: false).write(toFile: file, atomically: true, encoding: .utf8)
        let run = try CamflowProcess(["run", file, "--watch", "--status-interval", "0"])
        defer { run.process.terminate() }
        let serving = "serving http://127.0.0.1:"
        try await run.waitForLine(timeout: .seconds(60), inStderr: true) { $0.contains(serving) }
        let servingLine = try #require(run.stderr.split(separator: "\n").first { $0.contains(serving) })
        let port = try #require(servingLine.split(separator: serving).last.flatMap { Int($0.prefix { $0.isNumber }) })

        // A viewer plays in Chromium across the reload: 8 s of playback.
        let script = repositoryRoot.appendingPathComponent("Tests/Browser/browser_check.py").path
        let browser = try CamflowProcess([script, "viewer", "http://127.0.0.1:\(port)/viewer?autostart=1", "--screenshot",
                                          WebEndToEndTests.artifacts.appendingPathComponent("viewer-reload.png").path,
                                          "--play", "8", "--timeout", "60"], executable: "/usr/bin/python3")
        defer { browser.process.terminate() }
        var viewer: Int?
        try await waitUntil("the viewer plays", timeout: .seconds(60)) {
            let viewers = (try? apiStats(port: port))?["viewers"] as? [[String: Any]] ?? []
            viewer = viewers.first { $0["playing"] as? Bool == true }?["id"] as? Int
            return viewer != nil
        }
        try await run.waitForLine { $0.contains(" keyframe track=") }

        // The edit: stats added, the log's format changed, the recorder removed.
        let edited = ContinuousClock.now
        try pipeline(camera: camera, recordings: recordings, reloaded: true).write(toFile: file, atomically: true, encoding: .utf8)
        try await run.waitForLine(timeout: .seconds(10), inStderr: true) { $0.contains("reload: kept 4, replaced 1 (log), added 1 (stats), removed 1 (record)") }
        try await run.waitForLine(timeout: .seconds(10)) { $0.hasPrefix("{") && $0.contains(#""event":"stats""#) }
        let statsAfter = ContinuousClock.now - edited
        #expect(statsAfter < .seconds(2), "stats lines in the new format \(statsAfter) after the edit")
        // The web sink was kept: the same viewer is still connected, never reconnected.
        let afterReload = try apiStats(port: port)["viewers"] as? [[String: Any]] ?? []
        #expect(afterReload.contains { $0["id"] as? Int == viewer }, "viewer \(viewer ?? -1) after the reload: \(afterReload)")

        // The removed recorder finished its file: published, indexed, no .partial left.
        try await waitUntil("the recorder's file is finished", timeout: .seconds(20)) {
            let files = FileManager.default.enumerator(atPath: recordings)?.allObjects as? [String] ?? []
            return files.contains { $0.hasSuffix(".mp4") } && !files.contains { $0.hasSuffix(".partial") }
        }
        #expect(FileManager.default.fileExists(atPath: recordings + "/index.jsonl"))

        // An invalid edit is reported; the graph runs on.
        try (pipeline(camera: camera, recordings: recordings, reloaded: true) + "\n  broken: { type: no-such-type }\n")
            .write(toFile: file, atomically: true, encoding: .utf8)
        try await run.waitForLine(timeout: .seconds(10), inStderr: true) { $0.contains("refused: the running graph is unchanged") }
        #expect(run.stderr.contains("unknown node type 'no-such-type'"))
        let keyframesBefore = keyframeSequences(run.stdout).count
        try await waitUntil("keyframes still arrive", timeout: .seconds(20)) { keyframeSequences(run.stdout).count > keyframesBefore + 1 }

        // The viewer played on, as the same viewer.
        #expect(try await browser.waitForExit(timeout: .seconds(90)) == 0, "\(browser.stderr)")
        let result = try #require(try JSONSerialization.jsonObject(with: Data(browser.stdout.utf8)) as? [String: Any])
        #expect((result["played"] as? Double ?? 0) >= 8, "\(result)")
        #expect((result["pageErrors"] as? [String])?.isEmpty == true, "\(result)")

        run.process.interrupt()
        #expect(try await run.waitForExit() == 0, "\(run.stderr)")
        let sequences = keyframeSequences(run.stdout)
        #expect(!sequences.isEmpty && sequences == Array(sequences[0]..<sequences[0] + sequences.count), "keyframes: \(sequences)")
        let connections = sim.stderr.split(separator: "\n").filter { $0.contains("client") && $0.hasSuffix(" connected") }
        #expect(connections.count == 1, "one camera connection for the whole run: \(connections)")
    }
}
