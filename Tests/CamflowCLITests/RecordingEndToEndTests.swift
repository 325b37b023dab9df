import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// file-record through the real binary: kill -9 in the middle, a file size limit.
@Suite struct RecordingEndToEndTests {
    func startSimulator() async throws -> (CamflowProcess, String) {
        let sim = try CamflowProcess(["sim", "--port", "0", "--speed", "10"])
        try await sim.waitForOutput(lines: 1)
        let url = String(sim.stdout.split(separator: "\n")[0].dropFirst("camera 1: ".count))
        return (sim, url)
    }

    func recordingPipeline(url: String, root: String, extra: String = "") throws -> String {
        try temporaryPipeline("""
            nodes:
              cam1: { type: instar-camera, url: "\(url)", username: admin, password: instar }
              parse: { type: mp4-parse, inputs: [cam1] }
              record: { type: file-record, inputs: [parse], path: "\(root)/{stream}/%H%M%S.mp4", \(extra) }
              log: { type: log, inputs: [record] }
            """)
    }

    func mp4Files(_ root: String, suffix: String = ".mp4") -> [String] {
        (FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String } ?? [])
            .filter { $0.hasSuffix(suffix) }.map { root + "/" + $0 }.sorted()
    }

    /// Decode errors and video dts values of a file.
    func inspect(_ path: String) throws -> (errors: String, dts: [Int], firstIsKey: Bool) {
        let errors = try runTool("/usr/bin/ffmpeg", ["-v", "error", "-i", path, "-f", "null", "-"]).stderr
        let packets = try runTool("/usr/bin/ffprobe", ["-v", "error", "-select_streams", "v:0", "-show_entries",
                                                       "packet=dts,flags", "-of", "csv=p=0", path]).stdout
            .split(separator: "\n").map { $0.split(separator: ",") }
        return (errors, packets.compactMap { $0.first.flatMap { Int($0) } }, packets.first?.last?.hasPrefix("K") == true)
    }

    @Test func killMinus9_thenRestart_leavesOnlyPlayableFiles_andNothingTwice() async throws {
        let (sim, url) = try await startSimulator()
        defer { sim.process.terminate() }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-kill-\(UUID().uuidString)").path
        let pipeline = try recordingPipeline(url: url, root: root, extra: "segment: 20s, fsync: every-fragment")
        let first = try CamflowProcess(["run", pipeline])
        // Wait until a file in progress holds a few fragments, then pull the plug.
        let deadline = ContinuousClock.now + .seconds(60)
        while (mp4Files(root, suffix: ".partial").first.flatMap {
            try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int
        } ?? 0) < 150_000 {
            guard ContinuousClock.now < deadline else { throw CancellationError() }
            try await Task.sleep(for: .milliseconds(20))
        }
        kill(first.process.processIdentifier, SIGKILL)
        _ = try await first.waitForExit()
        #expect(!mp4Files(root, suffix: ".partial").isEmpty, "the crash left a file in progress")
        // The next run finishes it, then records on.
        let second = try CamflowProcess(["run", pipeline, "--for", "2s"])
        #expect(try await second.waitForExit() == 0, "\(second.stderr)")
        #expect(second.stderr.contains("after a crash"))
        #expect(mp4Files(root, suffix: ".partial").isEmpty)
        let files = mp4Files(root)
        #expect(files.count >= 2)
        var seen: [Int] = []
        for file in files {
            let result = try inspect(file)
            #expect(result.errors.isEmpty, "\(file): \(result.errors)")
            #expect(result.firstIsKey, "\(file) starts with a keyframe")
            seen += result.dts
        }
        #expect(Set(seen).count == seen.count, "no frame was written twice")
    }

    @Test func fileSizeLimit_isReported_andRecordingRecoversWhenLifted() async throws {
        let (sim, url) = try await startSimulator()
        defer { sim.process.terminate() }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-full-\(UUID().uuidString)").path
        let pipeline = try recordingPipeline(url: url, root: root, extra: "segment: 1h, retry: 100ms")
        // A 300 KB file size limit (soft; the hard limit stays, so it can be lifted) stands in for a full disk.
        let run = try CamflowProcess(["--fsize=300000:unlimited", camflowBinary, "run", pipeline], executable: "/usr/bin/prlimit")
        try await run.waitForLine { $0.contains(" record-error ") && $0.contains("errno=27") }
        #expect(run.stderr.contains("File too large (errno 27)"))
        let lift = try runTool("/usr/bin/prlimit", ["--pid", "\(run.process.processIdentifier)", "--fsize=unlimited:unlimited"])
        #expect(lift.status == 0, "\(lift.stderr)")
        let deadline = ContinuousClock.now + .seconds(30)
        while !run.stderr.contains("writing again") {
            guard ContinuousClock.now < deadline else {
                Issue.record("recording did not resume:\n\(run.stderr)")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        run.process.interrupt()
        #expect(try await run.waitForExit() == 0)
        let files = mp4Files(root)
        #expect(!files.isEmpty)
        for file in files {
            let result = try inspect(file)
            #expect(result.errors.isEmpty, "\(file): \(result.errors)")
        }
    }
}

@Suite struct RecordingsCommandTests {
    @Test func recordings_listsWhatTheIndexHolds() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-list-\(UUID().uuidString)").path
        let pipeline = try temporaryPipeline("""
            nodes:
              cam1: { type: file-replay, path: \(repositoryRoot.path)/Tests/Fixtures/h264-main-aac.mp4 }
              parse: { type: mp4-parse, inputs: [cam1] }
              record: { type: file-record, inputs: [parse], path: "\(root)/{stream}/clip.mp4", segment: 2s }
            """)
        #expect(try await camflow("run", pipeline).status == 0)
        let listed = try await camflow("recordings", root)
        #expect(listed.status == 0)
        let rows = listed.stdout.split(separator: "\n").dropFirst()
        #expect(rows.count == 3, "\(listed.stdout)")
        let first = rows.first?.split(separator: " ") ?? []
        #expect(first.prefix(4) == ["cam1/clip.mp4", "cam1", "0.000", "2.000"], "\(listed.stdout)")
        let at = try await camflow("recordings", root, "--at", "3.5")
        #expect(at.stdout.split(separator: "\n").dropFirst().count == 1)
        #expect(at.stdout.contains("cam1/clip-1.mp4"))
        let missing = try await camflow("recordings", root + "/nothing-here")
        #expect(missing.status == 2)
    }
}
