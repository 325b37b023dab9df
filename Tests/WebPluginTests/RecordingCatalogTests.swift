import Camflow
import Foundation
import Logging
import Testing
@testable import WebPlugin
#if canImport(Glibc)
import Glibc
#endif

/// The recordings index as the web sink reads it: one read for concurrent
/// requests, a bounded read, an unreadable index told as an error, and
/// numbers checked where they enter.
@Suite struct RecordingCatalogTests {
    func root(lines: Int, files: [String] = ["cam/a.mp4"]) throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-catalog-\(UUID().uuidString)").path
        for file in files {
            try FileManager.default.createDirectory(atPath: root + "/" + (file as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            #expect(FileManager.default.createFile(atPath: root + "/" + file, contents: Data([0])))
        }
        var text = ""
        for index in 0..<lines {
            text += RecordingIndexEntry(path: files[index % files.count], stream: "cam", start: 0, end: 60,
                                        wallStart: 1_000_000 + Double(index) * 60, keyframes: 30, fragments: 30,
                                        bytes: 1000, reason: nil).jsonLine
        }
        try text.write(toFile: root + "/index.jsonl", atomically: true, encoding: .utf8)
        return root
    }

    @Test func concurrentRequests_shareOneRead_untilTheIndexChanges() async throws {
        let root = try root(lines: 20_000)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let catalog = RecordingCatalog(logger: Logger(label: "test"))
        let counts = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<8 { group.addTask { try await catalog.entries(root: root).count } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(counts == Array(repeating: 20_000, count: 8))
        #expect(catalog.reads.load(ordering: .relaxed) == 1, "eight requests, one parse")
        #expect(try await catalog.entries(root: root).count == 20_000)
        #expect(catalog.reads.load(ordering: .relaxed) == 1, "cached while the file is the same")
        let handle = try #require(FileHandle(forWritingAtPath: root + "/index.jsonl"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(RecordingIndexEntry(path: "cam/a.mp4", stream: "cam", start: 0, end: 1, wallStart: 5e6,
                                                                keyframes: 1, fragments: 1, bytes: 1, reason: nil).jsonLine.utf8))
        try handle.close()
        #expect(try await catalog.entries(root: root).count == 20_001)
        #expect(catalog.reads.load(ordering: .relaxed) == 2)
    }

    @Test func anIndexAboveTheCap_isReadFromItsEnd() throws {
        let root = try root(lines: 1000)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let size = try #require(try FileManager.default.attributesOfItem(atPath: root + "/index.jsonl")[.size] as? Int)
        let contents = try RecordingIndex.load(root: root, maxBytes: size / 10)
        #expect(contents.skippedBytes == Int64(size - size / 10))
        #expect(contents.entries.count > 50 && contents.entries.count < 100, "the newest tenth: \(contents.entries.count)")
        let newest = try #require(contents.entries.last?.wallStart)
        #expect(newest == Double(1_000_000 + 999 * 60), "\(newest - Double(1_000_000 + 999 * 60))")
        #expect(RecordingIndex.maxReadBytes == 64 << 20)
    }

    @Test func anIndexThatCannotBeRead_isAnError_notAnEmptyList() async throws {
        let root = try root(lines: 1)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let catalog = RecordingCatalog(logger: Logger(label: "test"))
        try FileManager.default.removeItem(atPath: root + "/index.jsonl")
        #expect(try await catalog.entries(root: root).isEmpty, "no index yet: no recordings")
        try FileManager.default.createDirectory(atPath: root + "/index.jsonl", withIntermediateDirectories: false)
        await #expect(throws: RecordingIndexError.self) { try await catalog.entries(root: root) }
        try FileManager.default.removeItem(atPath: root + "/index.jsonl")
        // A FIFO would block a reader forever; a link is not followed.
        #expect(mkfifo(root + "/index.jsonl", 0o600) == 0)
        #expect(throws: RecordingIndexError.self) { try RecordingIndex.load(root: root) }
        try FileManager.default.removeItem(atPath: root + "/index.jsonl")
        try FileManager.default.createSymbolicLink(atPath: root + "/index.jsonl", withDestinationPath: "/etc/hostname")
        #expect(throws: RecordingIndexError.self) { try RecordingIndex.load(root: root) }
    }

    @Test func linesThatAreNotEntries_areCounted_notJustPassedOver() throws {
        let root = try root(lines: 1)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let handle = try #require(FileHandle(forWritingAtPath: root + "/index.jsonl"))
        try handle.seekToEnd()
        let outside = RecordingIndexEntry(path: "../up.mp4", stream: "cam", start: 0, end: 1, wallStart: 5e6, keyframes: 1,
                                          fragments: 1, bytes: 1, reason: nil)
        try handle.write(contentsOf: Data(("{\"path\":\"cam/a.m\n" + outside.jsonLine).utf8))
        try handle.close()
        let contents = try RecordingIndex.load(root: root)
        #expect(contents.entries.count == 1 && contents.unreadLines == 2 && contents.unchecked == 0)
    }

    @Test func numbersNoRecordingHas_areRefusedWhereTheyEnter() throws {
        func entry(_ fields: String) -> RecordingIndexEntry? {
            RecordingIndexEntry(jsonLine: #"{"path":"a.mp4","stream":"s","wall_start":1000,"# + fields + "}")
        }
        let far = try #require(entry(#""start":0,"end":1e303"#))
        #expect(far.end == nil && far.wallEnd == 1000)
        let wide = try #require(entry(#""start":-1e308,"end":1e308"#))
        #expect(wide.start == nil && wide.end == nil && wide.duration == 0)
        let counts = try #require(entry(#""keyframes":-5,"fragments":1e300,"bytes":-1e308"#))
        #expect(counts.keyframes == 0 && counts.fragments == 0 && counts.bytes == 0)
        #expect(entry(#""bytes":9007199254740992"#)?.bytes == 9_007_199_254_740_992)
        #expect(entry(#""start":9e9,"end":9.2e9"#)?.duration == 0.2e9, "times up to 2^63 ns are kept")
        #expect(RecordingIndexEntry(jsonLine: #"{"path":"a.mp4","stream":"s","wall_start":1e12}"#) == nil)
        #expect(RecordingIndexEntry(jsonLine: #"{"path":"a.mp4","stream":"s","wall_start":-1e300}"#) == nil)
    }

    @Test func filesReachedThroughLinks_areLeftOutOfTheIndex() throws {
        let root = try root(lines: 0)
        let outside = try self.root(lines: 0, files: ["secret.mp4"])
        defer { for path in [root, outside] { try? FileManager.default.removeItem(atPath: path) } }
        try FileManager.default.createSymbolicLink(atPath: root + "/olink", withDestinationPath: outside)
        try FileManager.default.createSymbolicLink(atPath: root + "/cam/flink.mp4", withDestinationPath: outside + "/secret.mp4")
        let lines = ["olink/secret.mp4", "cam/flink.mp4", "cam/a.mp4", "cam//a.mp4", "cam/./a.mp4"].map {
            RecordingIndexEntry(path: $0, stream: "cam", start: 0, end: 1, wallStart: 1000, keyframes: 1, fragments: 1,
                                bytes: 1, reason: nil).jsonLine
        }
        try lines.joined().write(toFile: root + "/index.jsonl", atomically: true, encoding: .utf8)
        #expect(try RecordingIndex.read(root: root).map(\.path) == ["cam/a.mp4"])
    }
}
