import InstarSimulator
import CamflowTesting
import Camflow
@testable import FilesPlugin
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import InstarPlugin
import ISOBMFF
import MP4Plugin
import NIOCore
import Testing

let fixtureDirectory = repositoryFile("Tests/Fixtures")

func fixtureBytes(_ name: String) throws -> ByteBuffer {
    ByteBuffer(bytes: try Data(contentsOf: fixtureDirectory.appendingPathComponent(name)))
}

/// Emits bytes packets: a live-like stream of `media` looped `loops` times.
struct LoopedStream: Node {
    let parts: [ByteBuffer]
    static func type(_ parts: [ByteBuffer]) -> NodeType {
        NodeType(name: "stream-bytes", summary: "", accepts: [], emits: .kinds(.bytes)) { _ in LoopedStream(parts: parts) }
    }
    static func looped(_ media: SimulatedMedia, loops: Int) -> [ByteBuffer] {
        var parts = [media.initSegment]
        for loop in 0..<loops {
            for index in media.fragments.indices { parts.append(media.fragment(index, loop: loop)) }
        }
        return parts
    }
    func run(_ context: NodeContext) async throws {
        for (index, part) in parts.enumerated() {
            await context.emit(Packet(kind: .bytes, stream: "cam1", sequence: UInt64(index), payload: part))
        }
    }
}

func temporaryDirectory() throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-rec-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func files(under root: String, suffix: String = ".mp4") -> [String] {
    (FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String } ?? [])
        .filter { $0.hasSuffix(suffix) }.map { root + "/" + $0 }.sorted()
}

/// Video packets of a file per ffprobe: count and whether the first is a keyframe.
func probeVideo(_ path: String) async throws -> (frames: Int, firstIsKey: Bool, errors: String) {
    let errors = try await runTool("/usr/bin/ffmpeg", ["-v", "error", "-i", path, "-f", "null", "-"]).stderr
    let packets = try await runTool("/usr/bin/ffprobe", ["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=flags",
                                                "-of", "csv=p=0", path]).stdout.split(separator: "\n")
    return (packets.count, packets.first?.hasPrefix("K") == true, errors)
}

@Suite struct FileRecordTests {
    let media = try? SimulatedMedia(file: try fixtureBytes("h264-main-aac.mp4"))

    func record(_ parts: [ByteBuffer], root: String, options: [String: OptionValue]) async throws -> TestHarness.Run {
        var all: [String: OptionValue] = ["path": .scalar(root + "/{stream}/%Y%m%d-%H%M%S.mp4")]
        all.merge(options) { $1 }
        return try await TestHarness(plugins: [FilesPlugin.self, MP4Plugin.self], nodeTypes: [LoopedStream.type(parts)]).run([
            NodeSpec(id: "cam", type: "stream-bytes"),
            NodeSpec(id: "parse", type: "mp4-parse", inputs: ["cam"]),
            NodeSpec(id: "record", type: "file-record", inputs: ["parse"], options: all),
        ], collect: ["record"])
    }

    @Test func threeMinutes_in20sSegments_areAllPlayable_andAddUp() async throws {
        let media = try #require(media)
        let root = try temporaryDirectory()
        // 30 passes of the 6 s clip: 3 minutes with continuous timestamps.
        let run = try await record(LoopedStream.looped(media, loops: 30), root: root, options: ["segment": "20s"])
        let recorded = files(under: root)
        #expect(recorded.count == 9, "\(recorded)")
        var frames = 0
        for file in recorded {
            let probe = try await probeVideo(file)
            #expect(probe.errors.isEmpty, "\(file): \(probe.errors)")
            #expect(probe.firstIsKey, "\(file) starts with a keyframe")
            frames += probe.frames
        }
        #expect(frames == 30 * 150, "every video frame of the input, once")
        #expect(files(under: root, suffix: ".partial").isEmpty)
        let index = try String(contentsOfFile: root + "/index.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(index.count == 9)
        #expect(index.first?.contains(#""stream":"cam1""#) == true)
        #expect(index.first?.contains(#""start":0,"end":20"#) == true, "\(index.first ?? "")")
        let announced = (run.packets["record"] ?? []).compactMap(\.event).filter { $0.name == "recorded" }
        #expect(announced.count == 9, "every file is announced, those finished by rotation too")
        #expect(Set(announced.compactMap { $0["path"]?.description }) == Set(recorded))
    }

    @Test func changedInitSegment_startsANewFile() async throws {
        let a = SimulatedMedia.boxes(try fixtureBytes("h264-baseline.mp4")).dropLast()  // without mfra
        let b = SimulatedMedia.boxes(try fixtureBytes("h264-gop-change.mp4")).dropLast()
        let root = try temporaryDirectory()
        _ = try await record(Array(a) + Array(b), root: root, options: ["segment": "1h"])
        let recorded = files(under: root)
        #expect(recorded.count == 2)
        var probes: [(frames: Int, firstIsKey: Bool, errors: String)] = []
        for file in recorded { probes.append(try await probeVideo(file)) }
        #expect(probes.allSatisfy { $0.errors.isEmpty && $0.firstIsKey })
        #expect(probes.map(\.frames).sorted() == [75, 125])
    }

    @Test func retention_deletesExactlyTheOldest() async throws {
        let media = try #require(media)
        let root = try temporaryDirectory()
        // 6 passes in 2 s segments: 18 files of 50 to 75 KB; keep at most 300 KB.
        _ = try await record(LoopedStream.looped(media, loops: 6), root: root,
                             options: ["segment": "2s", "max-total-size": "300KB"])
        let left = files(under: root)
        let sizes = try left.map { try FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int ?? 0 }
        #expect(sizes.reduce(0, +) <= 300_000)
        #expect(left.count >= 3)
        // The newest survive: the last index entries are the files left.
        let index = try String(contentsOfFile: root + "/index.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(index.count == 18)
        let newest = index.suffix(left.count).compactMap { line -> String? in
            guard let range = line.range(of: #""path":""#) else { return nil }
            return String(line[range.upperBound...].prefix { $0 != "\"" })
        }
        #expect(Set(newest.map { root + "/" + $0 }) == Set(left))
    }

    @Test func crashLeftovers_areCutAfterTheLastWholeFragment() async throws {
        let boxes = SimulatedMedia.boxes(try fixtureBytes("h264-baseline.mp4"))
        let root = try temporaryDirectory()
        try FileManager.default.createDirectory(atPath: root + "/cam1", withIntermediateDirectories: true)
        // ftyp moov moof mdat moof mdat, and half of the third fragment: a write cut by kill -9.
        var partial = ByteBuffer()
        for box in boxes.prefix(6) { partial.writeImmutableBuffer(box) }
        let whole = partial.readableBytes
        partial.writeImmutableBuffer(boxes[6])
        partial.writeImmutableBuffer(boxes[7].getSlice(at: boxes[7].readerIndex, length: 1000)!)
        try Data(partial.readableBytesView).write(to: URL(fileURLWithPath: root + "/cam1/crashed.mp4.partial"))
        _ = try await record([], root: root, options: [:])
        #expect(files(under: root, suffix: ".partial").isEmpty)
        let recovered = root + "/cam1/crashed.mp4"
        #expect((try FileManager.default.attributesOfItem(atPath: recovered)[.size] as? Int) == whole)
        let probe = try await probeVideo(recovered)
        #expect(probe.errors.isEmpty && probe.firstIsKey && probe.frames == 50)
        #expect(try String(contentsOfFile: root + "/index.jsonl", encoding: .utf8).contains(#""path":"cam1/crashed.mp4""#))
    }

    @Test func streamNames_cannotLeaveTheRoot() throws {
        let path = try RecordingPath("/data/rec/{stream}/{node}.mp4")
        #expect(path.root == "/data/rec")
        #expect(path.path(stream: "../../etc", node: "n", time: 0) == "/data/rec/.._.._etc/n.mp4")
        #expect(path.path(stream: "..", node: "a/b", time: 0) == "/data/rec/_/a_b.mp4")
        #expect(path.path(stream: "cam 1", node: "x", time: 0).hasPrefix("/data/rec/cam_1/"))
        #expect(throws: RecordingPath.Invalid.self) { try RecordingPath("../up/{stream}.mp4") }
    }

    @Test func keep_deletesFilesOlderThanTheAge_neverOnesInProgress() throws {
        let root = try temporaryDirectory()
        let old = root + "/cam1/old.mp4", recent = root + "/cam1/recent.mp4", writing = root + "/cam1/now.mp4.partial"
        try FileManager.default.createDirectory(atPath: root + "/cam1", withIntermediateDirectories: true)
        for path in [old, recent, writing] { _ = FileManager.default.createFile(atPath: path, contents: Data([1, 2, 3])) }
        let twoDaysAgo = Date().addingTimeInterval(-2 * 86400)
        for path in [old, writing] {
            try FileManager.default.setAttributes([.modificationDate: twoDaysAgo], ofItemAtPath: path)
        }
        RecordingFiles.applyRetention(root: root, keep: .seconds(86400), maxTotalSize: nil, now: Date().timeIntervalSince1970)
        #expect(!FileManager.default.fileExists(atPath: old))
        #expect(FileManager.default.fileExists(atPath: recent))
        #expect(FileManager.default.fileExists(atPath: writing))
    }

    @Test func retentionByAge_goesByThePipelinesClock() async throws {
        let root = try temporaryDirectory()
        let file = root + "/cam1/a.mp4"
        try FileManager.default.createDirectory(atPath: root + "/cam1", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: file, contents: Data([1, 2, 3]))
        let clock = ManualClock()
        #expect(RecordingFiles.applyRetention(root: root, keep: .seconds(3600), maxTotalSize: nil, now: clock.wallNow).deleted.isEmpty)
        await clock.advance(by: .seconds(7200))
        let (deleted, failures) = RecordingFiles.applyRetention(root: root, keep: .seconds(3600), maxTotalSize: nil, now: clock.wallNow)
        #expect(deleted.map(\.path) == [file] && deleted.map(\.reason) == ["age"] && failures.isEmpty)
    }

    @Test func aPartialTheDiskRefusesToPublish_isLeftAsItIs_notRemoved() async throws {
        let media = try #require(media)
        let root = try temporaryDirectory()
        var file = try RecordingFile(path: root + "/cam1/crashed.mp4", root: root, stream: "cam1", initSegment: media.initSegment,
                                     wallStart: Date().timeIntervalSince1970)
        try file.append(media.fragment(0, loop: 0), time: media.start(0, loop: 0), duration: nil, keyframe: true, sync: false)
        let folder = root + "/cam1"
        // The folder refuses the published name (root ignores modes, so it is made immutable).
        guard getuid() == 0, let madeImmutable = try? await runTool("/usr/bin/chattr", ["+i", folder]),
              madeImmutable.stderr.isEmpty else { return }
        let recovered: RecordingFiles.Recovery
        do {
            let directory = try SafeDirectory.open(root: root, relative: ["cam1"])
            defer { directory.close() }
            recovered = RecordingFiles.recover("crashed.mp4.partial", in: directory)
        } catch {
            _ = try? await runTool("/usr/bin/chattr", ["-i", folder])
            throw error
        }
        _ = try? await runTool("/usr/bin/chattr", ["-i", folder])
        guard case .failed(let error) = recovered else {
            Issue.record("a refused publish is a failure, not a file to remove")
            return
        }
        #expect(error.cause == .permission && error.path.hasSuffix("crashed.mp4.partial"), "\(error)")
        #expect(FileManager.default.fileExists(atPath: folder + "/crashed.mp4.partial"))
    }

    @Test func aFileRetentionCannotDelete_isReported() async throws {
        let root = try temporaryDirectory()
        let folder = root + "/cam1"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: folder + "/a.mp4", contents: Data([1, 2, 3]))
        // A folder retention may not write: its files cannot be unlinked (root ignores modes, so it is made immutable).
        chmod(folder, 0o555)
        let madeImmutable = getuid() == 0 ? try? await runTool("/usr/bin/chattr", ["+i", folder]) : nil
        let immutable = madeImmutable?.stderr.isEmpty == true
        let (deleted, failures) = RecordingFiles.applyRetention(root: root, keep: nil, maxTotalSize: 0,
                                                                now: Date().timeIntervalSince1970)
        if immutable { _ = try? await runTool("/usr/bin/chattr", ["-i", folder]) }
        chmod(folder, 0o755)
        #expect(deleted.isEmpty)
        #expect(failures.map(\.path) == [folder + "/a.mp4"] && failures.first?.cause == .permission, "\(failures)")
    }
}
