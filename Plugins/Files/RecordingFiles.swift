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

    /// Appends one line to the root's index with a single write, so lines never interleave.
    static func appendIndex(_ recording: FinishedRecording, root: String) {
        let relative = recording.path.hasPrefix(root + "/") ? String(recording.path.dropFirst(root.count + 1)) : recording.path
        let line = RecordingIndexEntry(
            path: relative, stream: recording.stream, start: recording.start, end: recording.end,
            wallStart: recording.wallStart, keyframes: recording.keyframes, fragments: recording.fragments,
            bytes: recording.bytes, reason: recording.reason).jsonLine
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let fd = open(root + "/" + indexName, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        defer { close(fd) }
        _ = line.withCString { Glibc.write(fd, $0, strlen($0)) }
    }

    /// Finds `*.mp4.partial` files under `root` (left by a crash), cuts each
    /// after its last whole fragment and publishes it. Returns what was
    /// finished. A `.partial` that is not a regular file (a planted link) is
    /// removed without being followed.
    static func recoverPartials(under root: String, log: Logger) -> [FinishedRecording] {
        guard let walker = FileManager.default.enumerator(atPath: root) else { return [] }
        var finished: [FinishedRecording] = []
        for case let relative as String in walker where relative.hasSuffix(".mp4.partial") {
            var components = relative.split(separator: "/").map(String.init)
            guard let name = components.popLast(), let directory = try? SafeDirectory.open(root: root, relative: components) else {
                log.warning("cannot open the directory of '\(root)/\(relative)'; left as it is")
                continue
            }
            defer { directory.close() }
            guard let recording = recover(name, in: directory) else {
                log.warning("removing '\(root)/\(relative)': no whole fragment in it")
                directory.remove(name)
                continue
            }
            log.notice("recovered '\(recording.path)' (\(recording.fragments) fragments) after a crash")
            finished.append(recording)
        }
        return finished
    }

    /// Truncates a partial recording after its last whole fragment and publishes it.
    /// The file is read a block at a time, so its size does not matter, and
    /// the first thing that does not parse is where it is cut: a crash leaves
    /// a torn last write, and a planted file may hold anything.
    static func recover(_ name: String, in directory: SafeDirectory) -> FinishedRecording? {
        let fd = openat(directory.fd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
        var parser = StreamingParser()
        var wholeEnd: Int64 = 0
        var initSegment: InitSegment?
        var fragments = 0, keyframes = 0
        var start: Double?, end: Double?
        reading: while true {
            var block = ByteBufferAllocator().buffer(capacity: 1 << 20)
            let count = block.writeWithUnsafeMutableBytes(minimumWritableBytes: 1 << 20) { raw in
                var n: Int
                repeat { n = read(fd, raw.baseAddress, raw.count) } while n < 0 && errno == EINTR
                return max(n, 0)
            }
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
                case .skipped: continue
                }
            }
        }
        guard fragments > 0, ftruncate(fd, off_t(wholeEnd)) == 0, fsync(fd) == 0 else { return nil }
        let stem = String(name.dropLast(".mp4.partial".count))
        guard let target = try? directory.publish(name, stem: stem) else { return nil }
        return FinishedRecording(path: target, stream: (target as NSString).pathComponents.dropLast().last ?? "",
                                 start: start, end: end, wallStart: Double(info.st_mtim.tv_sec), keyframes: keyframes,
                                 fragments: fragments, bytes: Int(wholeEnd))
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
    /// never touched. Returns what was deleted.
    @discardableResult
    static func applyRetention(root: String, keep: Duration?, maxTotalSize: Int?,
                               orAtLeastOne: Bool = false) -> [Deleted] {
        guard let walker = FileManager.default.enumerator(atPath: root) else { return [] }
        var files: [(path: String, date: Date, size: Int)] = []
        for case let relative as String in walker where relative.hasSuffix(".mp4") {
            let path = root + "/" + relative
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                  attributes[.type] as? FileAttributeType == .typeRegular,
                  let date = attributes[.modificationDate] as? Date,
                  let size = (attributes[.size] as? NSNumber)?.intValue else { continue }
            files.append((path, date, size))
        }
        files.sort { ($0.date, $0.path) < ($1.date, $1.path) }
        var total = files.reduce(0) { $0 + $1.size }
        let oldest = keep.map { Date().addingTimeInterval(-$0.seconds) }
        var deleted: [Deleted] = []
        for file in files {
            let tooOld = oldest.map { file.date < $0 } ?? false
            let tooMuch = maxTotalSize.map { total > $0 } ?? false
            let forRoom = orAtLeastOne && deleted.isEmpty
            guard tooOld || tooMuch || forRoom else { break }
            if unlink(file.path) == 0 {
                total -= file.size
                deleted.append(Deleted(path: file.path, size: file.size,
                                       reason: tooOld ? "age" : tooMuch ? "total-size" : "disk-full"))
            }
        }
        return deleted
    }
}
