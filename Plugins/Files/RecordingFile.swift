import Camflow
import Foundation
import ISOBMFF
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// A write that failed, with the path and the system's reason.
struct RecordingError: Error, Equatable, CustomStringConvertible {
    var operation: String
    var path: String
    var errno: Int32
    var description: String {
        "cannot \(operation) '\(path)': \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// A finished recording, as listed in index.jsonl.
struct FinishedRecording: Equatable {
    var path: String
    var stream: String
    var start: Double?
    var end: Double?
    var wallStart: Double
    var keyframes: Int
    var fragments: Int
    var bytes: Int
    /// The fsync that failed as the file was finished, if one did.
    var syncFailure: RecordingError?
    /// What made the recording, for an event clip ("alarm area1").
    var reason: String? = nil
}

/// A file being written: `NAME.mp4.partial` until finished, created and
/// published through a ``SafeDirectory``.
struct RecordingFile {
    let stream: String
    private let directory: SafeDirectory
    /// The file name without `.mp4`: `NAME.mp4.partial` while written, `NAME.mp4` after.
    private let stem: String
    private let fd: Int32
    private(set) var size = 0
    /// Bytes known to be whole: a torn write is cut back to here before the retry.
    private var committed = 0
    private(set) var startTime: Double?
    private var endTime: Double?
    private var keyframes = 0
    private var fragments = 0
    /// When the file's first frame arrived (seconds since 1970): where its
    /// media time sits on the wall clock for the web's timeline and clips.
    private let wallStart: Double

    var partialPath: String { directory.path + "/" + stem + ".mp4.partial" }

    /// Creates the file for `path` (a path below `root`, ending in `.mp4`)
    /// and writes the init segment. When `path` is taken, `-1`, `-2`... is
    /// added before `.mp4`.
    init(path: String, root: String, stream: String, initSegment: ByteBuffer,
         wallStart: Double = Date().timeIntervalSince1970) throws {
        self.stream = stream
        self.wallStart = wallStart
        let relative = root == "." || !path.hasPrefix(root + "/") ? path : String(path.dropFirst(root.count + 1))
        var components = relative.split(separator: "/").map(String.init)
        let name = String((components.popLast() ?? "recording.mp4").dropLast(".mp4".count))
        directory = try SafeDirectory.open(root: root, relative: components)
        var created: (stem: String, fd: Int32)?
        do {
            for number in 0..<10_000 where created == nil {
                let candidate = number == 0 ? name : "\(name)-\(number)"
                guard !directory.contains(candidate + ".mp4") else { continue }
                if let file = try directory.createExclusive(candidate + ".mp4.partial") { created = (candidate, file) }
            }
        } catch {
            directory.close()
            throw error
        }
        guard let created else {
            directory.close()
            throw RecordingError(operation: "create", path: path + ".partial", errno: EEXIST)
        }
        stem = created.stem
        fd = created.fd
        do {
            try writeAll(initSegment)
            committed = size
        } catch {
            Glibc.close(fd)
            directory.remove(stem + ".mp4.partial")
            directory.close()
            throw error
        }
    }

    private mutating func writeAll(_ bytes: ByteBuffer) throws {
        let failure = bytes.withUnsafeReadableBytes { OutputStream.writeAll(fd, $0) }
        if let failure {
            // Cut a torn write back, so the file stays whole fragments.
            _ = ftruncate(fd, off_t(committed))
            _ = lseek(fd, off_t(committed), SEEK_SET)
            size = committed
            throw RecordingError(operation: "write", path: partialPath, errno: failure)
        }
        size += bytes.readableBytes
    }

    mutating func append(_ fragment: ByteBuffer, time: Double?, duration: Double?, keyframe: Bool, sync: Bool) throws {
        try writeAll(fragment)
        if sync, fsync(fd) != 0 { throw RecordingError(operation: "fsync", path: partialPath, errno: errno) }
        committed = size
        fragments += 1
        if keyframe { keyframes += 1 }
        if let time {
            startTime = startTime ?? time
            endTime = time + (duration ?? 0)
        }
    }

    /// Flushes, closes and publishes the file under its final name. The
    /// descriptors are closed whatever happens; a failed fsync is reported in
    /// the result and the file is still published (recovery at the next
    /// start would do no better with it).
    mutating func finish(sync: Bool) throws -> FinishedRecording {
        var syncFailure: RecordingError?
        if sync, fsync(fd) != 0 { syncFailure = RecordingError(operation: "fsync", path: partialPath, errno: errno) }
        Glibc.close(fd)
        defer { directory.close() }
        let target = try directory.publish(stem + ".mp4.partial", stem: stem)
        return FinishedRecording(path: target, stream: stream, start: startTime, end: endTime, wallStart: wallStart,
                                 keyframes: keyframes, fragments: fragments, bytes: size, syncFailure: syncFailure)
    }
}
