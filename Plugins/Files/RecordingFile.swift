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

    /// What kind of failure, by what a recorder does about it: a full disk
    /// gets room from retention; the others wait for someone to act.
    enum Cause: String, Sendable {
        /// No space or quota left (ENOSPC, EDQUOT).
        case diskFull = "disk-full"
        /// Not allowed (EACCES, EPERM, a read-only file system).
        case permission
        /// A directory on the way is gone (ENOENT, ENOTDIR, ESTALE).
        case gone
        /// Anything else (EIO, a file size limit).
        case other
    }

    var cause: Cause {
        switch errno {
        case ENOSPC, EDQUOT: .diskFull
        case EACCES, EPERM, EROFS: .permission
        case ENOENT, ENOTDIR, ESTALE: .gone
        default: .other
        }
    }
}

/// A fragment whose decode times cannot be rebased into a file: its boxes
/// do not read, or its times fall before the file's first.
struct Unrecordable: Error, CustomStringConvertible {
    var path: String
    var description: String { "a fragment whose decode times precede the start of '\(path)' or do not read was left out" }
}

/// Why a fragment did not reach the disk; the recorder acts on which.
enum WriteFailure: Error, CustomStringConvertible {
    /// The fragment cannot go into a file: left out, never retried.
    case unrecordable(Unrecordable)
    /// The system refused a write: the fragment waits and is retried.
    case refused(RecordingError)

    var description: String {
        switch self {
        case .unrecordable(let error): "\(error)"
        case .refused(let error): "\(error)"
        }
    }
}

/// The offsets that make a file's decode times start at 0: the first
/// fragment's earliest track time (compared in seconds across timescales)
/// becomes 0 on every track alike, so tracks stay in sync. Checked
/// arithmetic throughout: a time that would fall below 0 or overflow makes
/// ``rebased(_:)`` return nil.
struct DecodeTimeRebase {
    /// Each track's timescale, from the init segment; nil when it does not
    /// parse (the fragments are then written as they are).
    private let timescales: [UInt32: UInt32]?
    /// The file's start: ticks in a timescale.
    private var base: (ticks: UInt64, timescale: UInt32)?
    private var offsets: [UInt32: UInt64] = [:]

    init(initSegment: ByteBuffer) {
        guard let parsed = try? InitSegment(parsing: initSegment) else {
            timescales = nil
            return
        }
        var scales: [UInt32: UInt32] = [:]
        for track in parsed.tracks where track.timescale > 0 { scales[track.id] = track.timescale }
        timescales = scales
    }

    /// The pieces of `fragment` to write, rebased; nil when it cannot be.
    mutating func rebased(_ fragment: ByteBuffer) -> [ByteBuffer]? {
        guard let timescales else { return [fragment] }
        if base == nil {
            guard let (entries, _) = DecodeTimes.read(fragment) else { return nil }
            var earliest: (ticks: UInt64, timescale: UInt32)?
            for entry in entries {
                guard let scale = timescales[entry.track] else { return nil }
                if let current = earliest, !Self.earlier(entry.time, scale, than: current.ticks, current.timescale) { continue }
                earliest = (entry.time, scale)
            }
            base = earliest
        }
        guard let base else { return [fragment] } // no tfdt: times start where the file does
        var offsets = self.offsets
        let pieces = DecodeTimes.rebased(fragment) { track in
            if let known = offsets[track] { return known }
            guard let scale = timescales[track] else { return nil }
            // base.ticks × scale / base.timescale, rounded down; nil when it does not fit 64 bits.
            let product = base.ticks.multipliedFullWidth(by: UInt64(scale))
            guard product.high < UInt64(base.timescale) else { return nil }
            let offset = UInt64(base.timescale).dividingFullWidth(product).quotient
            offsets[track] = offset
            return offset
        }
        if pieces != nil { self.offsets = offsets }
        return pieces
    }

    /// a / aScale < b / bScale, exactly.
    private static func earlier(_ a: UInt64, _ aScale: UInt32, than b: UInt64, _ bScale: UInt32) -> Bool {
        let left = a.multipliedFullWidth(by: UInt64(bScale))
        let right = b.multipliedFullWidth(by: UInt64(aScale))
        return (left.high, left.low) < (right.high, right.low)
    }
}

/// A `free` box after a recording's init segment that says the stream time
/// of its first frame (players pass over `free` boxes): what recovery after
/// a crash indexes as the file's start, the file itself starting at 0.
enum StreamTimeMark {
    static let prefix = "camflow stream-start="
    /// The largest mark read back.
    static let maxBytes = 64

    static func box(streamStart: Double) -> ByteBuffer {
        let text = prefix + String(streamStart)
        var box = ByteBuffer()
        box.writeInteger(UInt32(8 + text.utf8.count))
        box.writeString("free")
        box.writeString(text)
        return box
    }

    /// The stream time in a `free` box's content, if it is a mark.
    static func streamStart(content: ByteBuffer) -> Double? {
        guard let text = content.getString(at: content.readerIndex, length: content.readableBytes),
              text.hasPrefix(prefix), let value = Double(text.dropFirst(prefix.count)), value.isFinite else { return nil }
        return value
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
    /// Moves the stream's decode times so the file starts at 0.
    private var rebase: DecodeTimeRebase

    var partialPath: String { directory.path + "/" + stem + ".mp4.partial" }

    /// Creates the file for `path` (a path below `root`, ending in `.mp4`)
    /// and writes the init segment. When `path` is taken, `-1`, `-2`... is
    /// added before `.mp4`.
    init(path: String, root: String, stream: String, initSegment: ByteBuffer,
         wallStart: Double) throws(RecordingError) {
        self.stream = stream
        self.wallStart = wallStart
        rebase = DecodeTimeRebase(initSegment: initSegment)
        let relative = root == "." || !path.hasPrefix(root + "/") ? path : String(path.dropFirst(root.count + 1))
        var components = relative.split(separator: "/").map(String.init)
        let name = String((components.popLast() ?? "recording.mp4").dropLast(".mp4".count))
        directory = try SafeDirectory.open(root: root, relative: components)
        var created: (stem: String, fd: Int32)?
        do throws(RecordingError) {
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
        do throws(RecordingError) {
            try writeAll(initSegment)
            committed = size
        } catch {
            Glibc.close(fd)
            directory.remove(stem + ".mp4.partial")
            directory.close()
            throw error
        }
    }

    private mutating func writeAll(_ bytes: ByteBuffer) throws(RecordingError) {
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

    /// Whether `fragment` can go into this file: its decode times do not
    /// fall before the file's start (a stream's time that stepped back
    /// begins a new file instead).
    func accepts(_ fragment: ByteBuffer) -> Bool {
        var trial = rebase
        return trial.rebased(fragment) != nil
    }

    /// Appends `fragment`, its decode times moved so the file starts at 0;
    /// `time` is its stream time, kept for the index.
    mutating func append(_ fragment: ByteBuffer, time: Double?, duration: Double?, keyframe: Bool,
                         sync: Bool) throws(WriteFailure) {
        guard var pieces = rebase.rebased(fragment) else { throw .unrecordable(Unrecordable(path: partialPath)) }
        // Before the first fragment: where the file's 0 lies on the stream, for recovery after a crash.
        if fragments == 0, let time { pieces.insert(StreamTimeMark.box(streamStart: time), at: 0) }
        // A piece that fails cuts the file back to the last whole fragment, earlier pieces included.
        do throws(RecordingError) {
            for piece in pieces { try writeAll(piece) }
        } catch {
            throw .refused(error)
        }
        if sync, fsync(fd) != 0 { throw .refused(RecordingError(operation: "fsync", path: partialPath, errno: errno)) }
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
    mutating func finish(sync: Bool) throws(RecordingError) -> FinishedRecording {
        var syncFailure: RecordingError?
        if sync, fsync(fd) != 0 { syncFailure = RecordingError(operation: "fsync", path: partialPath, errno: errno) }
        Glibc.close(fd)
        defer { directory.close() }
        let target = try directory.publish(stem + ".mp4.partial", stem: stem)
        return FinishedRecording(path: target, stream: stream, start: startTime, end: endTime, wallStart: wallStart,
                                 keyframes: keyframes, fragments: fragments, bytes: size, syncFailure: syncFailure)
    }
}
