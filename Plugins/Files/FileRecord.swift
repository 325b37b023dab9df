import Camflow
import Foundation
import ISOBMFF
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// `file-record`: segmented, crash-safe recording of playable fragmented MP4 files.
struct FileRecord: PacketProcessor {
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
            Every file starts at decode time 0 (its fragments' tfdt are lowered by its first; a \
            fragment whose time falls before that, a stream whose clock stepped back, begins a new \
            file). Each finished file is appended to index.jsonl in the root (stream, start and end \
            time on the stream's timeline, wall-clock start, keyframes, size); 'camflow recordings \
            ROOT' lists them. \
            Every finished file, whether by rotation, a new init segment or the end, is announced \
            with a 'recorded' event. Retention ('keep', 'max-total-size') deletes the oldest \
            finished files, each with a 'deleted' event; when a write finds the disk full, \
            retention runs first and, if its limits free nothing, deletes the oldest finished \
            file, then the write is tried again (without retention configured nothing is ever \
            deleted). A write that still fails becomes a 'record-error' event (its 'cause': \
            disk-full, permission, gone or other) and a log line, once until writing works again; \
            fragments wait in a bounded buffer and writing is retried, so the rest of the \
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
        emits: .kinds(.event), performsBlockingIO: true,
        make: { options in
            let path: RecordingPath
            do {
                path = try RecordingPath(try options.string("path"))
            } catch let error as RecordingPath.Invalid {
                throw options.error("\(error)", option: "path")
            }
            return FileRecord(
                id: options.nodeID, path: path, segment: try options.duration("segment").seconds,
                maxSize: try options.ifSet("max-size", options.size), sync: try options.choice("fsync"),
                keep: try options.ifSet("keep", options.duration), maxTotalSize: try options.ifSet("max-total-size", options.size),
                bufferLimit: try options.size("buffer"), retry: try options.duration("retry"),
                maxStreams: try options.maxStreams())
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
    private var events: RecorderEvents

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
        self.events = RecorderEvents(node: id, root: path.root, keep: keep, maxTotalSize: maxTotalSize)
    }

    /// What a crash left half-written is finished before anything new is.
    mutating func setUp(_ context: NodeContext) async {
        for finished in RecordingFiles.recoverPartials(under: path.root, log: context.logger,
                                                                stream: path.stream(ofRelative:)) {
            if let failure = RecordingFiles.appendIndex(finished, root: path.root) {
                context.logger.error("'\(finished.path)' is not in the index: \(failure)")
            }
        }
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
            if let retryAt = stream.retryAt, context.clock.now < retryAt { return }
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
            do throws(WriteFailure) {
                let rotated = try write(fragment, to: &stream, wallNow: context.clock.wallNow)
                stream.pending.removeFirst()
                stream.pendingBytes -= fragment.payload.readableBytes
                if stream.failing {
                    stream.failing = false
                    context.logger.notice("stream \(stream.name): writing again after \(stream.failedAttempts) failed attempts")
                    stream.failedAttempts = 0
                }
                if let rotated { await announce(rotated, context) }
            } catch {
                switch error {
                case .unrecordable(let error):
                    // Never written, never retried: the fragment is left out and the stream goes on.
                    stream.pending.removeFirst()
                    stream.pendingBytes -= fragment.payload.readableBytes
                    context.stats.countDropped()
                    context.logger.warning("stream \(stream.name): \(error)")
                case .refused(let error):
                    // A full disk: retention makes room first, then the write is tried again at once.
                    if error.cause == .diskFull, !freedForThisFlush {
                        freedForThisFlush = true
                        if await makeRoom(context) { continue }
                    }
                    stream.retryAt = context.clock.now + retry
                    stream.failedAttempts += 1
                    // Logged and announced once per failing spell (every retry would flood the log);
                    // the spell's attempts are counted in the "writing again" line.
                    if !stream.failing {
                        stream.failing = true
                        context.logger.error("stream \(stream.name): \(error)")
                        await events.emit("record-error", stream: stream.name, [
                            ("path", .string(error.path)), ("errno", .int(Int64(error.errno))),
                            ("cause", .string(error.cause.rawValue)), ("message", .string("\(error)")),
                        ], context)
                    }
                    return
                }
            }
        }
        stream.retryAt = nil
        if stream.closeRequested { await close(&stream, context) }
    }

    /// Appends one fragment, opening or rotating files as needed. Returns
    /// the file that rotation finished, if any, to be announced.
    private func write(_ fragment: Packet, to stream: inout StreamRecording,
                       wallNow: Double) throws(WriteFailure) -> FinishedRecording? {
        let keyframe = fragment.media?.keyframe == true
        let time = fragment.media.flatMap { media -> Double? in
            guard let dts = media.dts, media.timescale > 0 else { return nil }
            return Double(dts) / Double(media.timescale)
        }
        var rotated: FinishedRecording?
        if var file = stream.file {
            let long = (time.map { $0 - (file.startTime ?? $0) } ?? 0) >= segment
            let big = maxSize.map { file.size + fragment.payload.readableBytes > $0 } ?? false
            // Decode times before the file's start (the stream's time stepped back) begin a new file.
            if (keyframe && (long || big)) || !file.accepts(fragment.payload) {
                stream.file = nil
                do throws(RecordingError) { rotated = try file.finish(sync: true) } catch { throw .refused(error) }
            }
        }
        if stream.file == nil {
            // A file starts with a keyframe; fragments before the first one are skipped.
            guard keyframe, let initSegment = stream.initSegment else { return rotated }
            let target = path.path(stream: stream.name, node: id, time: Int(wallNow))
            // Fragments may have waited in the buffer (a failing disk): the file's time is its first frame's arrival.
            do throws(RecordingError) {
                stream.file = try RecordingFile(path: target, root: path.root, stream: stream.name, initSegment: initSegment,
                                                wallStart: MonotonicClock.wallClock(of: fragment.receivedAt))
            } catch {
                throw .refused(error)
            }
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
        if let failure = RecordingFiles.appendIndex(finished, root: path.root) {
            context.logger.error("'\(finished.path)' is not in the index: \(failure)")
        }
        if let failure = finished.syncFailure {
            context.logger.error("stream \(finished.stream): \(failure); the file is kept as written")
        }
        await events.emit("recorded", stream: finished.stream, [
            ("path", .string(finished.path)), ("bytes", .int(Int64(finished.bytes))),
            ("keyframes", .int(Int64(finished.keyframes))),
        ], context)
        await events.applyRetention(context)
    }

    /// On a full disk: retention by its limits and, when they free nothing,
    /// the oldest finished recording goes (with retention configured only:
    /// without it, camflow never deletes a recording). True when room was made.
    private mutating func makeRoom(_ context: NodeContext) async -> Bool {
        await events.applyRetention(orAtLeastOne: true, context)
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
    var retryAt: ContinuousClock.Instant?
    /// Whether the last write failed: its error was logged and announced once.
    var failing = false
    /// Writes that failed since the last that went through.
    var failedAttempts = 0
    var closeRequested = false
}
