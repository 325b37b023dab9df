public import Foundation
#if canImport(Glibc)
import Glibc
#endif

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
        self.init(json: Data(jsonLine.utf8))
    }

    /// The largest media time kept, in seconds: 2^63 nanoseconds. Larger
    /// (`1e303`) or non-finite times are read as unknown, so no sum or
    /// difference of them leaves the finite numbers.
    public static let maxMediaSeconds = Double(Int64.max) / 1e9
    /// Wall-clock times beyond this many seconds from 1970 (the year 5138) refuse the line.
    public static let maxWallSeconds = 1e11

    /// Reads one line's bytes; numbers are checked here, where they enter.
    init?(json: Data) {
        guard let object = (try? JSONSerialization.jsonObject(with: json)) as? [String: Any],
              let path = object["path"] as? String, let stream = object["stream"] as? String,
              let wallStart = (object["wall_start"] as? NSNumber)?.doubleValue, wallStart.isFinite,
              wallStart.magnitude < Self.maxWallSeconds else { return nil }
        func time(_ key: String) -> Double? {
            (object[key] as? NSNumber).map(\.doubleValue).flatMap { $0.isFinite && $0.magnitude <= Self.maxMediaSeconds ? $0 : nil }
        }
        func count(_ key: String) -> Int {
            // At most 2^53, exact as a double and far beyond any real count or size; anything else reads as 0 (unknown).
            guard let value = (object[key] as? NSNumber)?.doubleValue, value.isFinite, value >= 0,
                  value <= 9_007_199_254_740_992 else { return 0 }
            return Int(value.rounded())
        }
        self.init(path: path, stream: stream, start: time("start"), end: time("end"), wallStart: wallStart,
                  keyframes: count("keyframes"), fragments: count("fragments"), bytes: count("bytes"),
                  reason: object["reason"] as? String)
    }
}

/// Why a recording root's index could not be read.
public struct RecordingIndexError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The index file.
    public let path: String
    /// What went wrong (`Is a directory`, `not a regular file`).
    public let reason: String

    public var description: String { "cannot read the recordings index '\(path)': \(reason)" }
}

/// A recording root's index: `index.jsonl`, one ``RecordingIndexEntry`` a line.
public enum RecordingIndex {
    public static let fileName = "index.jsonl"
    /// The most of an index read: its newest 64 MiB (about 300,000 recordings).
    public static let maxReadBytes = 64 << 20

    /// Which version of an index file: it changed when any of these did.
    public struct Identity: Sendable, Hashable {
        public let device: UInt64
        public let inode: UInt64
        public let size: Int64
        public let modified: Int64
        public let changed: Int64
    }

    /// An index as read.
    public struct Contents: Sendable {
        public let identity: Identity
        /// Entries whose files exist, oldest first.
        public let entries: [RecordingIndexEntry]
        /// Bytes at the start of the file left unread (the index is larger than the cap).
        public let skippedBytes: Int64
        /// Lines that are not entries (torn by a full disk, written by someone else) or whose path leaves the root.
        public var unreadLines = 0
        /// Entries left out because whether their file exists could not be told (not because it is
        /// gone): a folder that cannot be opened, too many open files. Their first reason.
        public var unchecked = 0
        public var uncheckedReason: String?
    }

    /// The index of `root` as it is now, without reading it; nil when there is none yet.
    public static func identity(root: String) throws(RecordingIndexError) -> Identity? {
        let path = root + "/" + fileName
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return nil }
            throw RecordingIndexError(path: path, reason: String(cString: strerror(errno)))
        }
        return Identity(info)
    }

    /// The entries of the index under `root` whose files still exist (retention
    /// deletes files, not lines), oldest first. Entries whose path leaves the
    /// root, or reaches its file through a symbolic link, are left out. An
    /// index larger than `maxBytes` is read from its end: the newest lines
    /// are the ones kept.
    public static func read(root: String, maxBytes: Int = maxReadBytes) throws -> [RecordingIndexEntry] {
        try load(root: root, maxBytes: maxBytes).entries
    }

    /// Reads the index of `root` (not a link, a regular file), at most its last `maxBytes`.
    public static func load(root: String, maxBytes: Int = maxReadBytes) throws(RecordingIndexError) -> Contents {
        let path = root + "/" + fileName
        func failure(_ reason: String) -> RecordingIndexError { RecordingIndexError(path: path, reason: reason) }
        // Not following a link, and never blocking on a FIFO planted in its place.
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw failure(String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure(String(cString: strerror(errno))) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw failure("not a regular file") }
        let identity = Identity(info)
        let skipped = max(0, identity.size - Int64(maxBytes))
        let length = Int(identity.size - skipped)
        var data = Data(count: length)
        var filled = 0
        let readFailure: Int32? = data.withUnsafeMutableBytes { raw -> Int32? in
            while filled < length {
                let count = pread(fd, raw.baseAddress! + filled, length - filled, off_t(skipped) + off_t(filled))
                if count < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                if count == 0 { break } // truncated since the fstat: what is there
                filled += count
            }
            return nil
        }
        if let readFailure { throw failure(String(cString: strerror(readFailure))) }
        let files = RegularFileProbe(root: root)
        let (parsed, unread) = parseCounting(data.prefix(filled), startsMidLine: skipped > 0)
        var contents = Contents(identity: identity, entries: parsed.filter { files.isRegularFile($0.path) }, skippedBytes: skipped)
        contents.unreadLines = unread
        contents.unchecked = files.unchecked
        contents.uncheckedReason = files.uncheckedReason
        // Entries there but none checkable is not "no recordings": an error, as an index that cannot be read.
        if contents.entries.isEmpty, files.unchecked > 0 {
            throw failure("cannot check the recordings it lists: \(files.uncheckedReason ?? "")")
        }
        return contents
    }

    /// The entries of an index's bytes whose paths stay below the root,
    /// oldest first; lines that are not entries are passed over. When the
    /// bytes start mid-line (the end of a larger index), the first line is too.
    public static func parse(_ data: Data, startsMidLine: Bool = false) -> [RecordingIndexEntry] {
        parseCounting(data, startsMidLine: startsMidLine).entries
    }

    /// ``parse(_:startsMidLine:)``, and how many lines were passed over.
    static func parseCounting(_ data: Data, startsMidLine: Bool) -> (entries: [RecordingIndexEntry], unread: Int) {
        var lines = data.split(separator: UInt8(ascii: "\n"))
        if startsMidLine, !lines.isEmpty { lines.removeFirst() }
        let entries = lines.compactMap { line -> RecordingIndexEntry? in
            guard let entry = RecordingIndexEntry(json: Data(line)), entry.pathIsContained else { return nil }
            return entry
        }
        return (entries.sorted(by: RecordingIndexEntry.listedBefore), lines.count - entries.count)
    }
}

extension RecordingIndexEntry {
    /// The listing's order: when begun, to the millisecond; files begun
    /// within one (a replay at full speed cuts segments that fast) by media
    /// time, then by path, so the order never depends on the index's.
    public static func listedBefore(_ a: RecordingIndexEntry, _ b: RecordingIndexEntry) -> Bool {
        let (aMillis, bMillis) = ((a.wallStart * 1000).rounded(.down), (b.wallStart * 1000).rounded(.down))
        if aMillis != bMillis { return aMillis < bMillis }
        if a.start != b.start { return (a.start ?? -.infinity) < (b.start ?? -.infinity) }
        return a.path < b.path
    }
}

extension RecordingIndex.Identity {
    init(_ info: stat) {
        self.init(device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
                  modified: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec),
                  changed: Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec))
    }
}

/// Answers "is this a regular file below the root, reached without links?"
/// for many paths at the cost of one `fstatat` each: every directory is
/// opened once (component-wise, without following links) and kept open
/// until the value is dropped.
final class RegularFileProbe {
    private let root: String
    /// Directory descriptors by relative path ("" is the root); -1 where it cannot be opened safely.
    private var directories: [String: Int32] = [:]
    /// Paths for which the system could not say (an error other than "gone" or "a link"), and the first reason.
    private(set) var unchecked = 0
    private(set) var uncheckedReason: String?

    /// Notes a failure that does not mean the file is gone or refused (a link, not a folder).
    private func note(_ error: Int32, _ what: String) {
        guard ![ENOENT, ENOTDIR, ELOOP, ENAMETOOLONG].contains(error) else { return }
        unchecked += 1
        if uncheckedReason == nil { uncheckedReason = "'\(what)': \(String(cString: strerror(error)))" }
    }

    init(root: String) {
        self.root = root
    }

    deinit {
        for fd in directories.values where fd >= 0 { close(fd) }
    }

    /// Folders below the root a path may go through: deeper paths are refused
    /// before anything is opened (an index line of 20,000 components took
    /// 3.5 GB and 27 s when each level was opened and copied in turn).
    static let maxDepth = 32
    /// Directory descriptors kept open at most; past it the cache starts again.
    static let maxOpenDirectories = 256

    func isRegularFile(_ relative: String) -> Bool {
        guard !relative.hasPrefix("/"), !relative.contains("\0"), relative.utf8.count <= 4096 else { return false }
        var components = relative.split(separator: "/", omittingEmptySubsequences: false)
        guard components.count <= Self.maxDepth + 1, let name = components.popLast(),
              !name.isEmpty, name != ".", name != ".." else { return false }
        let (directory, failure) = self.directory(components)
        guard directory >= 0 else {
            if let failure { note(failure, relative) }
            return false
        }
        var info = stat()
        guard fstatat(directory, String(name), &info, AT_SYMLINK_NOFOLLOW) == 0 else {
            note(errno, relative)
            return false
        }
        return info.st_mode & S_IFMT == S_IFREG
    }

    /// Why a folder could not be opened, by relative path (its errno).
    private var failures: [String: Int32] = [:]

    /// The folder `components` below the root, opened one component at a time
    /// without following links; -1 where that cannot be done, with the
    /// system's reason when it gave one.
    private func directory(_ components: [Substring]) -> (fd: Int32, failure: Int32?) {
        if directories.count >= Self.maxOpenDirectories {
            for fd in directories.values where fd >= 0 { close(fd) }
            directories.removeAll()
            failures.removeAll()
        }
        var key = ""
        var fd: Int32
        if let root = directories[key] {
            fd = root
        } else {
            fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if fd < 0 { failures[key] = errno }
            directories[key] = fd
        }
        for component in components {
            guard fd >= 0 else { return (-1, failures[key]) }
            key += key.isEmpty ? String(component) : "/" + component
            if let known = directories[key] {
                fd = known
                continue
            }
            if !component.isEmpty, component != ".", component != ".." {
                fd = openat(fd, String(component), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if fd < 0 { failures[key] = errno }
            } else {
                fd = -1
            }
            directories[key] = fd
        }
        return (fd, fd < 0 ? failures[key] : nil)
    }
}
