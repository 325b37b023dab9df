import Camflow
import Foundation
import ISOBMFF
import Logging
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// What a recorder does to the files under its root: the index, crash
/// recovery and retention.
enum RecordingFiles {
    static let indexName = RecordingIndex.fileName

    /// Appends one line to the root's index with a single write, so lines
    /// never interleave. A line torn by a full disk is closed with a newline
    /// first, so that it costs itself and not the next line too. Returns why
    /// the line could not be written, if it could not.
    @discardableResult
    static func appendIndex(_ recording: FinishedRecording, root: String) -> RecordingError? {
        let relative = recording.path.hasPrefix(root + "/") ? String(recording.path.dropFirst(root.count + 1)) : recording.path
        var line = RecordingIndexEntry(
            path: relative, stream: recording.stream, start: recording.start, end: recording.end,
            wallStart: recording.wallStart, keyframes: recording.keyframes, fragments: recording.fragments,
            bytes: recording.bytes, reason: recording.reason).jsonLine
        let path = root + "/" + indexName
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        // Never through a planted link, never blocking on a planted FIFO.
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0o644)
        guard fd >= 0 else { return RecordingError(operation: "open", path: path, errno: errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            return RecordingError(operation: "append to", path: path, errno: EINVAL)
        }
        var last: UInt8 = UInt8(ascii: "\n")
        if info.st_size > 0 {
            let readable = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
            if readable >= 0 {
                _ = pread(readable, &last, 1, info.st_size - 1)
                close(readable)
            }
        }
        if last != UInt8(ascii: "\n") { line = "\n" + line }
        let bytes = Array(line.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        if written == bytes.count { return nil }
        return RecordingError(operation: "append to", path: path, errno: written < 0 ? errno : ENOSPC)
    }

    /// Finds `*.mp4.partial` files under `root` (left by a crash), cuts each
    /// after its last whole fragment and publishes it. Returns what was
    /// finished. A `.partial` that is not a regular file (a planted link) is
    /// removed without being followed.
    /// `stream` names the stream of a file at a relative path (from the
    /// path template), when it can.
    static func recoverPartials(under root: String, log: Logger,
                                stream: (String) -> String? = { _ in nil }) -> [FinishedRecording] {
        guard let walker = FileManager.default.enumerator(atPath: root) else { return [] }
        var finished: [FinishedRecording] = []
        for case let relative as String in walker where relative.hasSuffix(".mp4.partial") {
            var components = relative.split(separator: "/").map(String.init)
            guard let name = components.popLast() else { continue }
            let directory: SafeDirectory
            do throws(RecordingError) {
                directory = try SafeDirectory.open(root: root, relative: components)
            } catch {
                log.warning("cannot open the directory of '\(root)/\(relative)': \(error); left as it is")
                continue
            }
            defer { directory.close() }
            var recording: FinishedRecording
            switch recover(name, in: directory) {
            case .recovered(let recovered):
                recording = recovered
            case .discarded(let why):
                log.warning("removing '\(root)/\(relative)': \(why)")
                directory.remove(name)
                continue
            case .failed(let error):
                // What the disk refused may be whole: kept for the next start, never removed.
                log.error("cannot recover '\(root)/\(relative)': \(error); left as it is")
                continue
            }
            if let name = stream(relative) { recording.stream = name }
            log.notice("recovered '\(recording.path)' (\(recording.fragments) fragments) after a crash")
            finished.append(recording)
        }
        return finished
    }

    /// What became of a partial recording.
    enum Recovery {
        case recovered(FinishedRecording)
        /// Nothing in it worth keeping (no whole fragment, not a regular file): to be removed.
        case discarded(String)
        /// The system refused a step: the file is left as it is.
        case failed(RecordingError)
    }

    /// Truncates a partial recording after its last whole fragment and publishes it.
    /// The file is read a block at a time, so its size does not matter, and
    /// the first thing that does not parse is where it is cut: a crash leaves
    /// a torn last write, and a planted file may hold anything.
    static func recover(_ name: String, in directory: SafeDirectory) -> Recovery {
        let path = directory.path + "/" + name
        let fd = openat(directory.fd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else {
            // A link is refused by O_NOFOLLOW (ELOOP): planted, removed without being followed.
            if errno == ELOOP { return .discarded("a symbolic link, not a recording") }
            return .failed(RecordingError(operation: "open", path: path, errno: errno))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .failed(RecordingError(operation: "stat", path: path, errno: errno)) }
        guard info.st_mode & S_IFMT == S_IFREG else { return .discarded("not a regular file") }
        var parser = StreamingParser()
        var wholeEnd: Int64 = 0
        var initSegment: InitSegment?
        var fragments = 0, keyframes = 0
        var start: Double?, end: Double?
        var streamStart: Double?
        reading: while true {
            var block = ByteBufferAllocator().buffer(capacity: 1 << 20)
            var readFailure: Int32 = 0
            let count = block.writeWithUnsafeMutableBytes(minimumWritableBytes: 1 << 20) { raw in
                var n: Int
                repeat { n = read(fd, raw.baseAddress, raw.count) } while n < 0 && errno == EINTR
                if n < 0 { readFailure = errno }
                return max(n, 0)
            }
            // A read that fails is not the file's end: cutting there would lose what follows.
            if readFailure != 0 { return .failed(RecordingError(operation: "read", path: path, errno: readFailure)) }
            guard count > 0 else { break }
            parser.append(block)
            while true {
                let item: StreamingParser.Item?
                do { item = try parser.next() } catch { break reading }
                guard let item else { break }
                switch item {
                case .initSegment(let segment): initSegment = segment
                case .fragment(let fragment):
                    fragments += 1
                    wholeEnd = parser.offset
                    let video = initSegment?.tracks.first(where: \.isVideo)
                    let samples = fragment.samples.filter { $0.track == (video?.id ?? fragment.samples.first?.track) }
                    if samples.first?.isSync == true { keyframes += 1 }
                    if let video, let first = samples.first, let last = samples.last {
                        let scale = Double(video.timescale)
                        start = start ?? Double(first.dts) / scale
                        end = (Double(last.dts) + Double(last.duration)) / scale
                    }
                case .skipped(let type, let size, let offset):
                    // The mark of the stream time the file's 0 came from (a few bytes, read where it lies).
                    guard type == .free, streamStart == nil, size > 8, size <= Int64(8 + StreamTimeMark.maxBytes) else { continue }
                    var content = ByteBufferAllocator().buffer(capacity: Int(size) - 8)
                    let count = content.writeWithUnsafeMutableBytes(minimumWritableBytes: Int(size) - 8) { raw in
                        max(pread(fd, raw.baseAddress, Int(size) - 8, off_t(offset + 8)), 0)
                    }
                    if count == Int(size) - 8 { streamStart = StreamTimeMark.streamStart(content: content) }
                }
            }
        }
        guard fragments > 0 else { return .discarded("no whole fragment in it") }
        guard ftruncate(fd, off_t(wholeEnd)) == 0 else { return .failed(RecordingError(operation: "truncate", path: path, errno: errno)) }
        guard fsync(fd) == 0 else { return .failed(RecordingError(operation: "fsync", path: path, errno: errno)) }
        // The index keeps stream time: the file's times moved back to where its first frame was.
        if let streamStart, let first = start {
            end = end.map { $0 - first + streamStart }
            start = streamStart
        }
        let stem = String(name.dropLast(".mp4.partial".count))
        let target: String
        do throws(RecordingError) {
            target = try directory.publish(name, stem: stem)
        } catch {
            return .failed(error)
        }
        // The last write was the end of the last fragment: the file began its media length before.
        let modified = Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
        let length = start.flatMap { start in end.map { $0 - start } }.flatMap { $0.isFinite && $0 > 0 ? $0 : nil } ?? 0
        return .recovered(FinishedRecording(path: target, stream: (target as NSString).pathComponents.dropLast().last ?? "",
                                            start: start, end: end, wallStart: modified - length, keyframes: keyframes,
                                            fragments: fragments, bytes: Int(wholeEnd)))
    }

    /// A recording deleted by retention.
    struct Deleted {
        var path: String
        var size: Int
        /// `age`, `total-size` or `disk-full`.
        var reason: String
    }

    /// Deletes the oldest finished recordings under `root` beyond the
    /// limits, and, with `orAtLeastOne` (the disk is full), the oldest one
    /// even within them. Files being written (`*.partial`) and links are
    /// never touched. Returns what was deleted, and the deletions that
    /// failed (a file retention cannot delete keeps the disk full: the
    /// caller says so).
    /// - Parameter now: the wall clock, seconds since 1970 (the pipeline's clock).
    @discardableResult
    static func applyRetention(root: String, keep: Duration?, maxTotalSize: Int?, now: Double,
                               orAtLeastOne: Bool = false) -> (deleted: [Deleted], failures: [RecordingError]) {
        // No root yet: nothing was recorded, nothing to delete.
        guard let walker = FileManager.default.enumerator(atPath: root) else { return ([], []) }
        var files: [(path: String, date: Date, size: Int)] = []
        for case let relative as String in walker where relative.hasSuffix(".mp4") {
            let path = root + "/" + relative
            // A file gone since it was listed (or a link) is not retention's to delete.
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                  attributes[.type] as? FileAttributeType == .typeRegular,
                  let date = attributes[.modificationDate] as? Date,
                  let size = (attributes[.size] as? NSNumber)?.intValue else { continue }
            files.append((path, date, size))
        }
        files.sort { ($0.date, $0.path) < ($1.date, $1.path) }
        var total = files.reduce(0) { $0 + $1.size }
        let oldest = keep.map { Date(timeIntervalSince1970: now - $0.seconds) }
        var deleted: [Deleted] = []
        var failures: [RecordingError] = []
        for file in files {
            let tooOld = oldest.map { file.date < $0 } ?? false
            let tooMuch = maxTotalSize.map { total > $0 } ?? false
            let forRoom = orAtLeastOne && deleted.isEmpty
            guard tooOld || tooMuch || forRoom else { break }
            if unlink(file.path) == 0 {
                total -= file.size
                deleted.append(Deleted(path: file.path, size: file.size,
                                       reason: tooOld ? "age" : tooMuch ? "total-size" : "disk-full"))
            } else if errno != ENOENT {
                failures.append(RecordingError(operation: "delete", path: file.path, errno: errno))
            }
        }
        return (deleted, failures)
    }
}
