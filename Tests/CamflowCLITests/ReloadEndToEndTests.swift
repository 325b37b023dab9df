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
          events: { type: pipeline-events }
        """ + (reloaded ? """

          stats: { type: stats, inputs: [keyframes], interval: 1s }
          log: { type: log, inputs: [keyframes, stats, events], format: json }
        """ : """

          log: { type: log, inputs: [keyframes, events], format: text }
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
            let viewers = (try? await apiStats(port: port))?["viewers"] as? [[String: Any]] ?? []
            viewer = viewers.first { $0["playing"] as? Bool == true }?["id"] as? Int
            return viewer != nil
        }
        try await run.waitForLine { $0.contains(" keyframe track=") }

        // The edit: stats added, the log's format changed, the recorder removed.
        let edited = ContinuousClock.now
        try pipeline(camera: camera, recordings: recordings, reloaded: true).write(toFile: file, atomically: true, encoding: .utf8)
        try await run.waitForLine(timeout: .seconds(10), inStderr: true) { $0.contains("reload: kept 5, replaced 1 (log), added 1 (stats), removed 1 (record)") }
        try await run.waitForLine(timeout: .seconds(10)) { $0.hasPrefix("{") && $0.contains(#""event":"stats""#) }
        let statsAfter = ContinuousClock.now - edited
        // The reload is an event too, for whoever listens (here the new log).
        try await run.waitForLine(timeout: .seconds(10)) {
            $0.contains(#""event":"reload""#) && $0.contains(#""replaced":1"#) && $0.contains(#""added":1"#) && $0.contains(#""removed":1"#)
        }
        #expect(statsAfter < .seconds(2), "stats lines in the new format \(statsAfter) after the edit")
        // The web sink was kept: the same viewer is still connected, never reconnected.
        let stats = try await apiStats(port: port)
        #expect(stats["reloads"] as? Int == 1 && (stats["lastReload"] as? String)?.contains("added 1 (stats)") == true)
        #expect((stats["nodes"] as? [[String: Any]])?.contains { $0["id"] as? String == "stats" } == true, "/api/stats shows the new graph")
        let afterReload = stats["viewers"] as? [[String: Any]] ?? []
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

/// SIGHUP without --watch, and validation of files that need secrets.
@Suite struct ReloadSignalAndValidateTests {
    @Test func sighup_reloadsTheFile_evenWithoutWatch() async throws {
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
        let run = try CamflowProcess(["run", file, "--status-interval", "0"])
        defer { run.process.terminate() }
        try await run.waitForLine { $0.hasPrefix("replay ") }
        try text("json").write(toFile: file, atomically: true, encoding: .utf8)
        kill(run.process.processIdentifier, SIGHUP)
        try await run.waitForLine(timeout: .seconds(20), inStderr: true) { $0.contains("reload: kept 2, replaced 1 (log), added 0, removed 0") }
        try await run.waitForLine(timeout: .seconds(20)) { $0.hasPrefix("{\"stream\":\"replay\"") }
        run.process.interrupt()
        #expect(try await run.waitForExit() == 0, "\(run.stderr)")
    }

    @Test func validateAllowUnset_checksEverythingButWhatNeedsTheSecret() async throws {
        let file = try temporaryPipeline("""
            nodes:
              camera: { type: instar-camera, url: "${CAMFLOW_TEST_UNSET_URL}", password: "${CAMFLOW_TEST_UNSET_PASSWORD}" }
              parse: { type: mp4-parse, inputs: [camera], frames: maybe }
            """)
        // Without the flag the unset variable is an error; with it, only the real mistake is.
        let strict = try await camflow("validate", file)
        #expect(strict.status == 2 && strict.stderr.contains("'CAMFLOW_TEST_UNSET_URL' is not set"))
        let lenient = try await camflow("validate", "--allow-unset", file)
        #expect(lenient.status == 2, "\(lenient)")
        #expect(lenient.stderr.contains("option 'frames'") && !lenient.stderr.contains("is not set"), "\(lenient.stderr)")
        try """
            nodes:
              camera: { type: instar-camera, url: "${CAMFLOW_TEST_UNSET_URL}", password: "${CAMFLOW_TEST_UNSET_PASSWORD}" }
              parse: { type: mp4-parse, inputs: [camera] }
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let fixed = try await camflow("validate", "--allow-unset", file)
        #expect(fixed.status == 0, "\(fixed)")
        #expect(fixed.stdout.contains("ok (2 nodes); not checked") && fixed.stdout.contains("depend on CAMFLOW_TEST_UNSET_URL"))
        // A placeholder hides no error that is not about it, and none is printed raw.
        try """
            nodes:
              events: { type: mqtt-subscribe, broker: "mqtt://broker", topics: [a], ca-file: "${CAMFLOW_TEST_UNSET_CA}" }
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let hidden = try await camflow("validate", "--allow-unset", file)
        #expect(hidden.status == 2 && hidden.stderr.contains("TLS files need an mqtts:// broker"), "\(hidden)")
        #expect(!hidden.stderr.contains("\u{E000}"))
        try """
            nodes:
              camera: { type: instar-camera, url: "${CAMFLOW_TEST_UNSET_URL}", password: "${CAMFLOW_TEST_UNSET_PASSWORD}" }
              parse: { type: mp4-parse, inputs: [camera] }
            """.write(toFile: file, atomically: true, encoding: .utf8)
        // A placeholder never runs.
        let run = try await camflow("run", file)
        #expect(run.status == 2 && run.stderr.contains("'CAMFLOW_TEST_UNSET_URL' is not set"))
    }
}
