import Foundation
import Camflow
import CamflowTesting
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

    /// Decode errors and video decode times (seconds in the file, which starts at 0) of a file.
    func inspect(_ path: String) async throws -> (errors: String, dts: [Double], firstIsKey: Bool) {
        let errors = try await runTool("/usr/bin/ffmpeg", ["-v", "error", "-i", path, "-f", "null", "-"]).stderr
        let packets = try await runTool("/usr/bin/ffprobe", ["-v", "error", "-select_streams", "v:0", "-show_entries",
                                                       "packet=dts_time,flags", "-of", "csv=p=0", path]).stdout
            .split(separator: "\n").map { $0.split(separator: ",") }
        return (errors, packets.compactMap { $0.first.flatMap { Double($0) } }, packets.first?.last?.hasPrefix("K") == true)
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
        // Each file starts at 0; the index says where on the stream (the recovered file's too).
        let index = try RecordingIndex.read(root: root)
        #expect(index.count == files.count)
        var seen: [Int] = []
        for file in files {
            let result = try await inspect(file)
            #expect(result.errors.isEmpty, "\(file): \(result.errors)")
            #expect(result.firstIsKey, "\(file) starts with a keyframe")
            let entry = try #require(index.first { root + "/" + $0.path == file })
            let offset = (entry.start ?? .nan) - (result.dts.first ?? 0)
            seen += result.dts.map { Int((($0 + offset) * 1000).rounded()) }
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
        let lift = try await runTool("/usr/bin/prlimit", ["--pid", "\(run.process.processIdentifier)", "--fsize=unlimited:unlimited"])
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
            let result = try await inspect(file)
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
        #expect(missing.stderr.contains("no recordings index"), "\(missing.stderr)")
        // An index that is there but cannot be read says why, not "no recordings".
        let unreadable = root + "/unreadable"
        try FileManager.default.createDirectory(atPath: unreadable + "/index.jsonl", withIntermediateDirectories: true)
        let refused = try await camflow("recordings", unreadable)
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("cannot read the recordings index") && !refused.stderr.contains("no recordings index"),
                "\(refused.stderr)")
    }
}

/// What a hostile neighbour on the disk can try, and a disk that fills up.
@Suite struct RecordingSafetyEndToEndTests {
    func scratch(_ name: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-\(name)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Tests/Peers/fsync_shim.c compiled, for LD_PRELOAD.
    func fsyncShim() async throws -> String {
        let shim = try scratch("shim") + "/fsync_shim.so"
        let compiled = try await runTool("/usr/bin/gcc", ["-shared", "-fPIC", "-o", shim,
                                                    repositoryRoot.appendingPathComponent("Tests/Peers/fsync_shim.c").path, "-ldl"])
        try #require(compiled.status == 0, "\(compiled.stderr)")
        return shim
    }

    /// The 6 s fixture recorded in 2 s files as ROOT/cam1/clip*.mp4, events logged.
    func clipRecording(_ root: String) throws -> String {
        try temporaryPipeline("""
            nodes:
              cam1: { type: file-replay, path: \(repositoryRoot.path)/Tests/Fixtures/h264-main-aac.mp4 }
              parse: { type: mp4-parse, inputs: [cam1] }
              record: { type: file-record, inputs: [parse], path: "\(root)/{stream}/clip.mp4", segment: 2s }
              log: { type: log, inputs: [record] }
            """)
    }

    @Test func plantedLinks_areNeverFollowed_andEveryFileIsAnnounced() async throws {
        let root = try scratch("links")
        let outside = try scratch("victim")
        let victim = outside + "/precious.txt"
        try "precious".write(toFile: victim, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: root + "/cam1", withIntermediateDirectories: true)
        // Links where the first file would be written and where the second would be published.
        try FileManager.default.createSymbolicLink(atPath: root + "/cam1/clip.mp4.partial", withDestinationPath: victim)
        try FileManager.default.createSymbolicLink(atPath: root + "/cam1/clip-1.mp4", withDestinationPath: victim)
        let pipeline = try clipRecording(root)
        let run = try await camflow("run", pipeline)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious", "the file behind the links is untouched")
        let names = try FileManager.default.contentsOfDirectory(atPath: root + "/cam1").sorted()
        // Recovery at start removed the planted .partial link (without following it); clip-1.mp4 is taken.
        #expect(!names.contains("clip.mp4.partial"))
        #expect(names.filter { $0.hasSuffix(".mp4") && $0 != "clip-1.mp4" } == ["clip-2.mp4", "clip-3.mp4", "clip.mp4"],
                "recordings take free names around the link: \(names)")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root + "/cam1/clip-1.mp4") == victim)
        let recorded = run.stdout.split(separator: "\n").filter { $0.contains(" recorded ") }
        #expect(recorded.count == 3, "every file is announced, rotated ones too:\n\(run.stdout)")
        let index = try String(contentsOfFile: root + "/index.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(index.count == 3)
        // A link to a directory below the root is not followed either: that stream cannot record.
        try FileManager.default.createSymbolicLink(atPath: root + "/cam2", withDestinationPath: outside)
        let elsewhere = try temporaryPipeline("""
            nodes:
              cam2: { type: file-replay, path: \(repositoryRoot.path)/Tests/Fixtures/h264-main-aac.mp4 }
              parse: { type: mp4-parse, inputs: [cam2] }
              record: { type: file-record, inputs: [parse], path: "\(root)/{stream}/clip.mp4", segment: 2s, retry: 10ms }
              log: { type: log, inputs: [record] }
            """)
        let refused = try await camflow("run", elsewhere)
        #expect(refused.stdout.contains(" record-error "), "\(refused.stdout)\n\(refused.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside) == ["precious.txt"])
    }

    @Test func aFailedFsync_isReported_andTheFileStillFinishes() async throws {
        // A shim (Tests/Peers/fsync_shim.c) makes fsync fail on files being written.
        let shim = try await fsyncShim()
        let root = try scratch("fsync")
        let pipeline = try clipRecording(root)
        let run = try await camflow("run", pipeline, environment: ["LD_PRELOAD": shim, "CAMFLOW_FSYNC_FAIL": "1"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("cannot fsync") && run.stderr.contains("the file is kept as written"), "\(run.stderr)")
        #expect(run.stdout.split(separator: "\n").filter { $0.contains(" recorded ") }.count == 3, "\(run.stdout)")
        let names = try FileManager.default.contentsOfDirectory(atPath: root + "/cam1").sorted()
        #expect(names == ["clip-1.mp4", "clip-2.mp4", "clip.mp4"], "published, no .partial left behind: \(names)")
    }

    /// Whether this machine lets a test mount a small tmpfs in a private mount
    /// namespace (root, unshare): asked once, by the first test that needs it.
    static let canMountTmpfs = Task<Bool, Never> {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare") else { return false }
        let probe = (try? await runTool("/usr/bin/unshare", ["-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"]))
        return probe?.status == 0
    }

    @Test(.enabled("needs root and mount namespaces for a really full disk") { await canMountTmpfs.value })
    func aFullDisk_makesRoomThroughRetention_andRecordingGoesOn() async throws {
        let root = try scratch("full")
        let pipeline = try temporaryPipeline("""
            nodes:
              cam1: { type: file-replay, path: \(repositoryRoot.path)/Tests/Fixtures/h264-main-aac.mp4, loop: true, rate: 400KiB/s }
              parse: { type: mp4-parse, inputs: [cam1] }
              record: { type: file-record, inputs: [parse], path: "\(root)/{stream}/%H%M%S.mp4", segment: 1s, max-total-size: 1GiB, retry: 50ms }
              log: { type: log, inputs: [record] }
            """)
        // A 600 KiB disk of its own, in a mount namespace of its own.
        let script = "mount -t tmpfs -o size=600k tmpfs '\(root)' && exec '\(camflowBinary)' run '\(pipeline)' --for 6s"
        let run = try CamflowProcess(["-m", "sh", "-c", script], executable: "/usr/bin/unshare")
        let status = try await run.waitForExit(timeout: .seconds(60))
        #expect(status == 0, "\(run.stderr)")
        let lines = run.stdout.split(separator: "\n")
        let deleted = lines.filter { $0.contains(" deleted ") && $0.contains("reason=disk-full") }
        #expect(!deleted.isEmpty, "the full disk made retention delete the oldest file:\n\(run.stdout)\n\(run.stderr)")
        let firstDeletion = lines.firstIndex { $0.contains(" deleted ") } ?? lines.endIndex
        #expect(lines[firstDeletion...].contains { $0.contains(" recorded ") }, "recording went on after the disk filled")
    }

    @Test(.enabled("needs root and mount namespaces for a really full disk") { await canMountTmpfs.value })
    func aFullDisk_withoutRetention_isReportedOnce_withItsCause() async throws {
        let root = try scratch("full-kept")
        let pipeline = try temporaryPipeline("""
            nodes:
              cam1: { type: file-replay, path: \(repositoryRoot.path)/Tests/Fixtures/h264-main-aac.mp4, loop: true, rate: 400KiB/s }
              parse: { type: mp4-parse, inputs: [cam1] }
              record: { type: file-record, inputs: [parse], path: "\(root)/{stream}/%H%M%S.mp4", segment: 1s, retry: 50ms }
              log: { type: log, inputs: [record] }
            """)
        let script = "mount -t tmpfs -o size=300k tmpfs '\(root)' && exec '\(camflowBinary)' run '\(pipeline)' --for 4s"
        let run = try CamflowProcess(["-m", "sh", "-c", script], executable: "/usr/bin/unshare")
        let status = try await run.waitForExit(timeout: .seconds(60))
        #expect(status == 0, "\(run.stderr)")
        // Without retention nothing is deleted: the writes fail, and say so once, with the cause to act on.
        let errors = run.stdout.split(separator: "\n").filter { $0.contains(" record-error ") }
        #expect(errors.count == 1 && errors.allSatisfy { $0.contains("cause=disk-full") && $0.contains("errno=28") },
                "\(run.stdout)")
        #expect(!run.stdout.contains(" deleted "))
        let logged = run.stderr.split(separator: "\n").filter { $0.contains("No space left on device") && $0.contains("stream cam1") }
        #expect(logged.count == 1, "logged once however often it was retried:\n\(run.stderr)")
        #expect(run.stderr.contains("fragments could not be written"), "what was lost is counted at the end:\n\(run.stderr)")
    }

    /// A disk that takes its time (every fsync waits for the test) holds up
    /// the recorders alone: with more recorders blocked in fsync than the
    /// machine has cores, another branch still runs to its end, because
    /// file-record, file-replay and log make their blocking calls on threads
    /// of their own, not on Swift's cooperative pool.
    @Test func aSlowDisk_doesNotDelayAnotherBranch() async throws {
        let shim = try await fsyncShim()
        let root = try scratch("slow-disk")
        let gate = root + "/gate", fsyncLog = root + "/fsync.log"
        let clip = repositoryRoot.appendingPathComponent("Tests/Fixtures/h264-main-aac.mp4").path
        let recorders = min(32, max(4, 2 * ProcessInfo.processInfo.activeProcessorCount))
        var nodes = """
            nodes:
              disk: { type: file-replay, path: \(clip) }
              parse: { type: mp4-parse, inputs: [disk] }
              live: { type: file-replay, path: \(clip), realtime: true, stream: live }
              live-parse: { type: mp4-parse, inputs: [live], frames: true }
              out: { type: log, inputs: [live-parse], format: json }

            """
        for index in 0..<recorders {
            nodes += "  record\(index): { type: file-record, inputs: [parse], path: \"\(root)/r\(index)/{stream}.mp4\", fsync: every-fragment }\n"
        }
        let pipeline = try temporaryPipeline(nodes)
        let frames = try await runTool("/usr/bin/ffprobe", ["-v", "error", "-count_packets", "-show_entries",
                                                      "stream=nb_read_packets", "-of", "csv=p=0", clip])
        let expected = frames.stdout.split(separator: "\n").compactMap { Int($0) }.reduce(0, +)
        try #require(expected > 0, "ffprobe counted no packets: \(frames.stderr)")

        let run = try CamflowProcess(["run", pipeline, "--status-interval", "0"], environment: [
            "LD_PRELOAD": shim, "CAMFLOW_FSYNC_GATE": gate, "CAMFLOW_FSYNC_LOG": fsyncLog,
        ])
        func fsyncs(_ what: String) -> Int {
            ((try? String(contentsOfFile: fsyncLog, encoding: .utf8)) ?? "").split(separator: "\n").filter { $0 == what }.count
        }
        try await waitUntil("every recorder waits in fsync", timeout: .seconds(60)) { fsyncs("enter") >= recorders }
        try await waitUntil("the live branch logged all \(expected) frames", timeout: .seconds(60)) {
            run.stdout.split(separator: "\n").filter { $0.contains("\"kind\":\"frame\"") }.count >= expected
        }
        #expect(fsyncs("leave") == 0, "the disk was released before the live branch ended")
        _ = FileManager.default.createFile(atPath: gate, contents: nil)
        #expect(try await run.waitForExit() == 0, "\(run.stderr)")
        #expect(fsyncs("leave") >= recorders)
        for index in 0..<recorders {
            #expect(FileManager.default.fileExists(atPath: "\(root)/r\(index)/disk.mp4"), "recorder \(index) lost its file")
        }
    }
}
