import Camflow
import Foundation
import ISOBMFF
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// `file-record`: segmented, crash-safe recording of playable fragmented MP4 files.
struct FileRecord: Node {
    enum SyncPolicy: String, CaseIterable { case everyFragment = "every-fragment", onClose = "on-close" }

    static let type = NodeType(
        name: "file-record",
        summary: "Records init + fragment packets as segmented, playable MP4 files, crash-safe, with retention and an index.",
        details: """
            Each file is the stream's init segment followed by whole fragments and starts at a \
            keyframe. A new file starts when 'segment' of media time or 'max-size' is reached (at the \
            next keyframe) and when the init segment changes or follows a reconnect. A file being \
            written is named *.partial; on close it is fsynced and renamed. At start, *.partial files \
            under the root (left by a crash) are cut after their last whole fragment and renamed. \
            Each finished file is appended to index.jsonl in the root (stream, start and end media \
            time, wall-clock start, keyframes, size); 'camflow recordings ROOT' lists them. \
            Every finished file, whether by rotation, a new init segment or the end, is announced \
            with a 'recorded' event. Retention ('keep', 'max-total-size') deletes the oldest \
            finished files, each with a 'deleted' event; when a write finds the disk full, \
            retention runs first and, if its limits free nothing, deletes the oldest finished \
            file, then the write is tried again (without retention configured nothing is ever \
            deleted). Another write error (permissions) becomes a 'record-error' event and a log \
            line; fragments wait in a bounded buffer and writing is retried, so the rest of the \
            pipeline runs on. Below the root no symbolic link is followed: directories are opened \
            with O_NOFOLLOW, a file is created with O_EXCL and published by a link that never \
            replaces an existing name. At \
            most 'max-streams' streams are recorded at once (each holds a file and a buffer); a new \
            one beyond that finishes the file of the stream idle longest.
            """,
        options: [
            OptionSpec("path", .string, default: "recordings/{stream}/%Y-%m-%d/%H%M%S.mp4",
                       "File name template: {stream}, {node} and strftime fields; the part before the first field is the root."),
            OptionSpec("segment", .duration, default: "60s", "Media time per file (cut at the next keyframe)."),
            OptionSpec("max-size", .size, "Bytes per file (cut at the next keyframe); no limit when unset."),
            OptionSpec("fsync", .choice(SyncPolicy.allCases.map(\.rawValue)), default: "on-close",
                       "When written data is forced to disk: after every fragment, or when a file is closed."),
            OptionSpec("keep", .duration, "Delete finished files older than this, such as 7d."),
            OptionSpec("max-total-size", .size, "Delete the oldest finished files while the root holds more than this."),
            OptionSpec("buffer", .size, default: "64MiB", "Fragments held while the disk fails; the oldest go beyond this."),
            OptionSpec("retry", .duration, default: "1s", "Wait between attempts after a write error."),
            .maxStreams(default: 16),
        ],
        accepts: [.initSegment, .fragment],
        emits: .kinds(.event),
        make: { options in
            let template = try options.string("path") ?? "recordings/{stream}/%Y-%m-%d/%H%M%S.mp4"
            let path: RecordingPath
            do {
                path = try RecordingPath(template)
            } catch {
                throw ConfigError("option 'path' of node '\(options.nodeID)': \(error)",
                                  at: try options.value("path")?.location ?? options.location)
            }
            return FileRecord(
                id: options.nodeID, path: path, segment: (try options.duration("segment") ?? .seconds(60)).seconds,
                maxSize: try options.size("max-size"), sync: try options.choice("fsync") ?? .onClose,
                keep: try options.duration("keep"), maxTotalSize: try options.size("max-total-size"),
                bufferLimit: try options.size("buffer") ?? 64 << 20, retry: try options.duration("retry") ?? .seconds(1),
                maxStreams: try options.maxStreams(default: 16))
        })

    let id: String
    let path: RecordingPath
    let segment: Double
    let maxSize: Int?
    let sync: SyncPolicy
    let keep: Duration?
    let maxTotalSize: Int?
    let bufferLimit: Int
    let retry: Duration

    private var streams: StreamTable<StreamRecording>
    private var eventSequence: UInt64 = 0

    init(id: String, path: RecordingPath, segment: Double, maxSize: Int?, sync: SyncPolicy, keep: Duration?,
         maxTotalSize: Int?, bufferLimit: Int, retry: Duration, maxStreams: Int) {
        self.streams = StreamTable(capacity: maxStreams)
        self.id = id
        self.path = path
        self.segment = segment
        self.maxSize = maxSize
        self.sync = sync
        self.keep = keep
        self.maxTotalSize = maxTotalSize
        self.bufferLimit = bufferLimit
        self.retry = retry
    }

    func run(_ context: NodeContext) async throws {
        // What a crash left half-written is finished before anything new is.
        for finished in RecordingFiles.recoverPartials(under: path.root, log: context.logger) {
            RecordingFiles.appendIndex(finished, root: path.root)
        }
        var recorder = self
        for await packet in context.input {
            await recorder.process(packet, context)
        }
        await recorder.finish(context)
    }

    mutating func process(_ packet: Packet, _ context: NodeContext) async {
        var stream = streams.take(packet.stream) ?? StreamRecording(name: packet.stream)
        await process(packet, stream: &stream, context)
        if var evicted = streams.put(stream, for: packet.stream) {
            await context.reportEvicted(stream: evicted.stream, capacity: streams.capacity)
            await retire(&evicted.value, context)
        }
    }

    private mutating func process(_ packet: Packet, stream: inout StreamRecording, _ context: NodeContext) async {
        switch packet.kind {
        case .initSegment:
            if stream.initSegment != packet.payload || packet.discontinuity {
                await close(&stream, context)
                stream.initSegment = packet.payload
            }
        case .fragment:
            guard stream.initSegment != nil else {
                context.stats.countDropped()
                return
            }
            if packet.discontinuity { await close(&stream, context) }
            stream.pending.append(packet)
            stream.pendingBytes += packet.payload.readableBytes
            while stream.pendingBytes > bufferLimit, stream.pending.count > 1 {
                let dropped = stream.pending.removeFirst()
                stream.pendingBytes -= dropped.payload.readableBytes
                context.stats.countDropped()
            }
            if let retryAt = stream.retryAt, MonotonicClock.now() < retryAt { return }
            await flush(&stream, context)
        default:
            return
        }
    }

    mutating func finish(_ context: NodeContext) async {
        for name in streams.streams {
            guard var stream = streams.take(name) else { continue }
            await retire(&stream, context)
        }
    }

    /// Writes what the stream still holds, one last try, and finishes its file.
    private mutating func retire(_ stream: inout StreamRecording, _ context: NodeContext) async {
        stream.retryAt = nil
        await flush(&stream, context)
        if !stream.pending.isEmpty {
            context.logger.error("stream \(stream.name): \(stream.pending.count) fragments could not be written")
            context.stats.countDropped(stream.pending.count)
            stream.pending = []
            stream.pendingBytes = 0
        }
        await close(&stream, context)
    }

    /// Writes pending fragments; on a write error keeps them and sets the
    /// retry time. A full disk first gets room from retention.
    private mutating func flush(_ stream: inout StreamRecording, _ context: NodeContext) async {
        var freedForThisFlush = false
        while let fragment = stream.pending.first {
            do {
                let rotated = try write(fragment, to: &stream)
                stream.pending.removeFirst()
                stream.pendingBytes -= fragment.payload.readableBytes
                if stream.failing {
                    stream.failing = false
                    context.logger.notice("stream \(stream.name): writing again")
                }
                if let rotated { await announce(rotated, context) }
            } catch let error as RecordingError {
                // A full disk: retention makes room first, then the write is tried again at once.
                if error.errno == ENOSPC || error.errno == EDQUOT, !freedForThisFlush {
                    freedForThisFlush = true
                    if await makeRoom(context) { continue }
                }
                stream.retryAt = MonotonicClock.now() + UInt64(retry.nanoseconds)
                if !stream.failing {
                    stream.failing = true
                    context.logger.error("stream \(stream.name): \(error)")
                    await emitEvent("record-error", stream: stream.name, [
                        ("path", .string(error.path)), ("errno", .int(Int64(error.errno))), ("message", .string("\(error)")),
                    ], context)
                }
                return
            } catch {
                return
            }
        }
        stream.retryAt = nil
        if stream.closeRequested { await close(&stream, context) }
    }

    /// Appends one fragment, opening or rotating files as needed. Returns
    /// the file that rotation finished, if any, to be announced.
    private func write(_ fragment: Packet, to stream: inout StreamRecording) throws -> FinishedRecording? {
        let keyframe = fragment.media?.keyframe == true
        let time = fragment.media.flatMap { media -> Double? in
            guard let dts = media.dts, media.timescale > 0 else { return nil }
            return Double(dts) / Double(media.timescale)
        }
        var rotated: FinishedRecording?
        if keyframe, var file = stream.file {
            let long = (time.map { $0 - (file.startTime ?? $0) } ?? 0) >= segment
            let big = maxSize.map { file.size + fragment.payload.readableBytes > $0 } ?? false
            if long || big {
                stream.file = nil
                rotated = try file.finish(sync: true)
            }
        }
        if stream.file == nil {
            // A file starts with a keyframe; fragments before the first one are skipped.
            guard keyframe, let initSegment = stream.initSegment else { return rotated }
            let target = path.path(stream: stream.name, node: id, time: Int(Date().timeIntervalSince1970))
            stream.file = try RecordingFile(path: target, root: path.root, stream: stream.name, initSegment: initSegment)
        }
        guard var file = stream.file else { return rotated }
        defer { stream.file = file }
        try file.append(fragment.payload, time: time, duration: fragment.media.flatMap { media -> Double? in
            guard let duration = media.duration, media.timescale > 0 else { return nil }
            return Double(duration) / Double(media.timescale)
        }, keyframe: keyframe, sync: sync == .everyFragment)
        return rotated
    }

    /// Finishes the stream's open file (after writing what is pending, if the disk allows).
    private mutating func close(_ stream: inout StreamRecording, _ context: NodeContext) async {
        guard stream.pending.isEmpty else {
            stream.closeRequested = true
            return
        }
        stream.closeRequested = false
        guard var file = stream.file else { return }
        stream.file = nil
        do {
            await announce(try file.finish(sync: true), context)
        } catch {
            context.logger.error("stream \(stream.name): \(error)")
        }
    }

    /// Every finished file, however it finished (rotation, a new init
    /// segment, the end): indexed, announced with a `recorded` event, then
    /// retention runs.
    private mutating func announce(_ finished: FinishedRecording, _ context: NodeContext) async {
        RecordingFiles.appendIndex(finished, root: path.root)
        if let failure = finished.syncFailure {
            context.logger.error("stream \(finished.stream): \(failure); the file is kept as written")
        }
        await emitEvent("recorded", stream: finished.stream, [
            ("path", .string(finished.path)), ("bytes", .int(Int64(finished.bytes))),
            ("keyframes", .int(Int64(finished.keyframes))),
        ], context)
        await applyRetention(context)
    }

    /// Deletes what the retention limits say, with a `deleted` event for each file.
    @discardableResult
    private mutating func applyRetention(_ context: NodeContext, orAtLeastOne: Bool = false) async -> Bool {
        guard keep != nil || maxTotalSize != nil else { return false }
        let deleted = RecordingFiles.applyRetention(root: path.root, keep: keep, maxTotalSize: maxTotalSize,
                                                    orAtLeastOne: orAtLeastOne)
        for file in deleted {
            // Retention works on the whole root, across streams: the event goes on the node's own stream.
            await emitEvent("deleted", stream: id, [
                ("path", .string(file.path)), ("bytes", .int(Int64(file.size))),
                ("reason", .string(file.reason)),
            ], context)
        }
        return !deleted.isEmpty
    }

    /// On a full disk: retention by its limits and, when they free nothing,
    /// the oldest finished recording goes (with retention configured only:
    /// without it, camflow never deletes a recording). True when room was made.
    private mutating func makeRoom(_ context: NodeContext) async -> Bool {
        await applyRetention(context, orAtLeastOne: true)
    }

    private mutating func emitEvent(_ name: String, stream: String, _ fields: [(key: String, value: EventValue)],
                                    _ context: NodeContext) async {
        defer { eventSequence += 1 }
        await context.emit(.event(Event(name, [("node", .string(id))] + fields), stream: stream, sequence: eventSequence))
    }
}

/// One stream's recording state.
private struct StreamRecording {
    var name: String
    var initSegment: ByteBuffer?
    var file: RecordingFile?
    /// Fragments not yet on disk (a write failed), oldest first.
    var pending: [Packet] = []
    var pendingBytes = 0
    var retryAt: UInt64?
    var failing = false
    var closeRequested = false
}

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
    private let wallStart = Date().timeIntervalSince1970

    var partialPath: String { directory.path + "/" + stem + ".mp4.partial" }

    /// Creates the file for `path` (a path below `root`, ending in `.mp4`)
    /// and writes the init segment. When `path` is taken, `-1`, `-2`... is
    /// added before `.mp4`.
    init(path: String, root: String, stream: String, initSegment: ByteBuffer) throws {
        self.stream = stream
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
        let failure: Int32? = bytes.withUnsafeReadableBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += written
            }
            return nil
        }
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
