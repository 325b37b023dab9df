import Camflow
import Foundation
import Testing

/// index.jsonl: what the recorders write reads back, and an index edited by
/// someone else cannot point outside its root.
@Suite struct RecordingIndexTests {
    func root(_ lines: [String], files: [String]) throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-index-\(UUID().uuidString)").path
        for file in files {
            let path = root + "/" + file
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            #expect(FileManager.default.createFile(atPath: path, contents: Data([0])))
        }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try (lines.joined(separator: "\n") + "\n").write(toFile: root + "/index.jsonl", atomically: true, encoding: .utf8)
        return root
    }

    @Test func anEntry_readsBackAsWritten() throws {
        let entry = RecordingIndexEntry(path: "cam1/2026-12-01/100000.mp4", stream: "cam1", start: 12.5, end: 72.5,
                                        wallStart: 1_796_150_000.25, keyframes: 30, fragments: 60, bytes: 123_456, reason: "alarm pir")
        #expect(RecordingIndexEntry(jsonLine: entry.jsonLine) == entry)
        #expect(entry.wallEnd == 1_796_150_060.25)
        let root = try root([entry.jsonLine, "not json", #"{"path":"x.mp4"}"#], files: [entry.path])
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(try RecordingIndex.read(root: root) == [entry])
    }

    @Test func pathsLeavingTheRoot_areLeftOut() throws {
        func line(_ path: String) -> String {
            RecordingIndexEntry(path: path, stream: "cam1", start: 0, end: 1, wallStart: 1000, keyframes: 1,
                                fragments: 1, bytes: 1, reason: nil).jsonLine
        }
        let root = try root([line("/etc/passwd"), line("../outside.mp4"), line("cam1/../../x.mp4"), line("cam1/ok.mp4")],
                            files: ["cam1/ok.mp4"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(try RecordingIndex.read(root: root).map(\.path) == ["cam1/ok.mp4"])
    }

    @Test func surprisingNumbers_neverTrap() {
        let line = #"{"path":"a.mp4","stream":"s","start":1e300,"end":-1e308,"wall_start":5,"keyframes":1e300,"bytes":-0.5}"#
        let entry = RecordingIndexEntry(jsonLine: line)
        #expect(entry?.keyframes == 0 && entry?.duration == 0)
    }

    /// Each folder of a path was opened by a call of its own, copying the
    /// path at each level: 20,000 components took 3.5 GB and 27 s, and some
    /// 50,000 overflowed the stack. Deep paths are refused before any open.
    @Test func deepPaths_areRefusedBeforeAnyFolderIsOpened() throws {
        func line(_ path: String) -> String {
            RecordingIndexEntry(path: path, stream: "cam1", start: 0, end: 1, wallStart: 1000, keyframes: 1,
                                fragments: 1, bytes: 1, reason: nil).jsonLine
        }
        let deep = String(repeating: "a/", count: 60_000) + "x.mp4"
        let nested = (1...32).map { "d\($0)" }.joined(separator: "/") + "/ok.mp4"
        let tooNested = (1...33).map { "d\($0)" }.joined(separator: "/") + "/no.mp4"
        let root = try root([line(deep), line(nested), line(tooNested), line("cam1/ok.mp4")],
                            files: ["cam1/ok.mp4", nested, tooNested])
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(Set(try RecordingIndex.read(root: root).map(\.path)) == [nested, "cam1/ok.mp4"])
    }

    @Test func filesBegunInOneMillisecond_areListedByMediaTime_whateverTheIndexOrder() {
        func entry(_ path: String, start: Double, wall: Double) -> String {
            #"{"path":"\#(path)","stream":"cam","start":\#(start),"end":\#(start + 2),"wall_start":\#(wall),"keyframes":1,"fragments":1,"bytes":10}"#
        }
        let lines = [entry("cam/clip-1.mp4", start: 2, wall: 1_700_000_000.0004),
                     entry("cam/clip.mp4", start: 0, wall: 1_700_000_000.0007),
                     entry("cam/clip-2.mp4", start: 4, wall: 1_700_000_000.5)]
        let listed = RecordingIndex.parse(Data(lines.joined(separator: "\n").utf8)).map(\.path)
        #expect(listed == ["cam/clip.mp4", "cam/clip-1.mp4", "cam/clip-2.mp4"])
    }
}
