import Foundation

/// One line of a recording root's `index.jsonl`: a finished file of
/// file-record or event-record. Written by the recorders, read by
/// `camflow recordings` and the web sink's recordings pages.
public struct RecordingIndexEntry: Sendable, Equatable {
    /// The file, relative to the root (as written).
    public var path: String
    public var stream: String
    /// Media time of the first frame and the end of the last, in seconds.
    public var start: Double?
    public var end: Double?
    /// When the file was begun, in seconds since 1970.
    public var wallStart: Double
    public var keyframes: Int
    public var fragments: Int
    public var bytes: Int
    /// What made an event clip ("alarm area1"); nil for continuous recording.
    public var reason: String?

    public init(path: String, stream: String, start: Double?, end: Double?, wallStart: Double,
                keyframes: Int, fragments: Int, bytes: Int, reason: String?) {
        self.path = path
        self.stream = stream
        self.start = start
        self.end = end
        self.wallStart = wallStart
        self.keyframes = keyframes
        self.fragments = fragments
        self.bytes = bytes
        self.reason = reason
    }

    /// The media length in seconds (0 when unknown).
    public var duration: Double {
        guard let start, let end, end > start else { return 0 }
        return end - start
    }

    /// When the last frame ended, in seconds since 1970.
    public var wallEnd: Double { wallStart + duration }

    /// Whether `path` stays below the root: relative, without `..`. The
    /// recorders write nothing else; an index edited by someone else could.
    public var pathIsContained: Bool {
        !path.isEmpty && !path.hasPrefix("/") && !path.split(separator: "/").contains("..")
            && !path.contains("\0")
    }

    /// The entry as one JSON line, newline included.
    public var jsonLine: String {
        var object = JSONObject()
        object.append("path", path)
        object.append("stream", stream)
        object.append("start", start)
        object.append("end", end)
        object.append("wall_start", wallStart)
        object.append("keyframes", Int64(keyframes))
        object.append("fragments", Int64(fragments))
        object.append("bytes", Int64(bytes))
        object.append("reason", reason)
        return object.text + "\n"
    }

    /// Reads a line as written by ``jsonLine``; nil for anything else.
    public init?(jsonLine: some StringProtocol) {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(jsonLine.utf8))) as? [String: Any],
              let path = object["path"] as? String, let stream = object["stream"] as? String,
              let wallStart = (object["wall_start"] as? NSNumber)?.doubleValue, wallStart.isFinite else { return nil }
        func number(_ key: String) -> Double? {
            (object[key] as? NSNumber).map(\.doubleValue).flatMap { $0.isFinite ? $0 : nil }
        }
        func count(_ key: String) -> Int {
            number(key).flatMap { Int(exactly: $0.rounded()) } ?? 0
        }
        self.init(path: path, stream: stream, start: number("start"), end: number("end"), wallStart: wallStart,
                  keyframes: count("keyframes"), fragments: count("fragments"), bytes: count("bytes"),
                  reason: object["reason"] as? String)
    }
}

/// A recording root's index: `index.jsonl`, one ``RecordingIndexEntry`` a line.
public enum RecordingIndex {
    public static let fileName = "index.jsonl"

    /// The entries of the index under `root` whose files still exist (retention
    /// deletes files, not lines), oldest first. Entries whose path leaves the
    /// root are left out. An index larger than `maxBytes` is read from its
    /// end: the newest lines are the ones kept.
    public static func read(root: String, maxBytes: Int = 64 << 20) throws -> [RecordingIndexEntry] {
        let url = URL(fileURLWithPath: root).appendingPathComponent(fileName)
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        let size = try handle.seekToEnd()
        try handle.seek(toOffset: size > UInt64(maxBytes) ? size - UInt64(maxBytes) : 0)
        let data = try handle.readToEnd() ?? Data()
        var lines = data.split(separator: UInt8(ascii: "\n"))
        if size > UInt64(maxBytes), !lines.isEmpty { lines.removeFirst() } // cut mid-line
        return lines.compactMap { line -> RecordingIndexEntry? in
            guard let entry = RecordingIndexEntry(jsonLine: String(decoding: line, as: UTF8.self)),
                  entry.pathIsContained, entry.wallStart.magnitude < 1e11 else { return nil }
            return FileManager.default.fileExists(atPath: root + "/" + entry.path) ? entry : nil
        }.sorted { $0.wallStart < $1.wallStart }
    }
}
