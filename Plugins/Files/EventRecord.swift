import Camflow
import Foundation
import NIOCore

/// `event-record`: clips around trigger events (a camera's alarms), with a
/// pre-roll that starts at a keyframe, written as file-record writes.
struct EventRecord: PacketProcessor {
    static let type = NodeType(
        name: "event-record",
        summary: "Records clips around trigger events (alarms): keyframe-aligned pre-roll, post-roll, crash-safe files, a 'clip' event each.",
        details: """
            Inputs: the media (init, fragment) and the events that trigger clips. For each stream \
            the node holds whole GOPs covering at least 'pre-roll' (at most 'buffer' bytes). A \
            trigger starts a clip at the latest keyframe at or before trigger time − pre-roll, so \
            every clip decodes from its first frame and its pre-roll is never shorter than asked \
            (unless the stream began later); when the GOP is longer than the pre-roll it says so \
            once, and the pre-roll reaches back to the previous keyframe. A trigger while a clip \
            is open extends it to the last trigger + 'post-roll'; a clip ends at 'max-clip'. A \
            trigger's time is the media time it arrived at (the newest fragment's end plus the time \
            since that fragment arrived). 'triggers' lists event names, each optionally with \
            field matches ('alarm source=pir', 'mqtt topic=door/ring'); an event with active: \
            false (an alarm that ended) never triggers. Files are written like file-record's: \
            *.partial until finished, fsynced and renamed, starting at decode time 0, recovered after a crash, appended to \
            index.jsonl in the root with the trigger as 'reason', and retention by 'keep' and \
            'max-total-size'. Each finished clip is announced with a 'clip' event: path, start and \
            end (media seconds), reason, triggers, pre-roll and post-roll achieved (seconds), bytes. \
            A write error ends that clip with a 'record-error' event and a log line.
            """,
        options: [
            OptionSpec("path", .string, default: "clips/{stream}/%Y-%m-%d/%H%M%S.mp4",
                       "File name template: {stream}, {node} and strftime fields; the part before the first field is the root."),
            OptionSpec("pre-roll", .duration, default: "5s", max: "10m", "Media before the trigger that a clip starts with, at least."),
            OptionSpec("post-roll", .duration, default: "10s", max: "1h", "Media after the last trigger that a clip ends with, at least."),
            OptionSpec("max-clip", .duration, default: "5m", above: "0s", max: "24h", "Longest clip; the next trigger starts a new one."),
            OptionSpec("triggers", .list(.string), "Event names that trigger, each with optional field=value matches; 'alarm' when unset."),
            OptionSpec("buffer", .size, default: "64MiB", min: "1KiB", "Bytes held per stream for the pre-roll; the oldest GOPs go beyond this."),
            OptionSpec("keep", .duration, "Delete finished clips older than this, such as 30d."),
            OptionSpec("max-total-size", .size, "Delete the oldest finished clips while the root holds more than this."),
            .maxStreams(default: 16),
        ],
        accepts: [.initSegment, .fragment, .event],
        emits: .kinds(.event), performsBlockingIO: true,
        make: { options in try EventRecord(options) })

    /// An event that starts or extends a clip.
    struct Trigger: Equatable {
        var name: String
        var fields: [String: String]

        /// `name` or `name field=value …`.
        init?(parsing text: String) {
            let words = text.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = words.first, !first.contains("=") else { return nil }
            name = String(first)
            var fields: [String: String] = [:]
            for word in words.dropFirst() {
                let parts = word.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, !parts[0].isEmpty else { return nil }
                fields[String(parts[0])] = String(parts[1])
            }
            self.fields = fields
        }

        func matches(_ event: Event) -> Bool {
            guard event.name == name, event["active"] != .bool(false) else { return false }
            return fields.allSatisfy { key, value in event[key]?.description == value }
        }
    }

    let id: String
    let path: RecordingPath
    let preRoll: Double
    let postRoll: Double
    let maxClip: Double
    let triggers: [Trigger]
    let bufferLimit: Int
    let keep: Duration?
    let maxTotalSize: Int?
    private var streams: StreamTable<StreamClips>
    private var events: RecorderEvents

    init(_ options: NodeOptions) throws {
        id = options.nodeID
        do {
            path = try RecordingPath(try options.string("path"))
        } catch let error as RecordingPath.Invalid {
            throw options.error("\(error)", option: "path")
        }
        preRoll = try options.duration("pre-roll").seconds
        postRoll = try options.duration("post-roll").seconds
        maxClip = try options.duration("max-clip").seconds
        triggers = try (try options.ifSet("triggers", options.stringList) ?? ["alarm"]).map { text in
            guard let trigger = Trigger(parsing: text) else {
                throw options.error("'\(text)' is not an event name with optional field=value matches", option: "triggers")
            }
            return trigger
        }
        bufferLimit = try options.size("buffer")
        keep = try options.ifSet("keep", options.duration)
        maxTotalSize = try options.ifSet("max-total-size", options.size)
        streams = StreamTable(capacity: try options.maxStreams())
        events = RecorderEvents(node: id, root: path.root, keep: keep, maxTotalSize: maxTotalSize)
    }

    mutating func setUp(_ context: NodeContext) async {
        for finished in RecordingFiles.recoverPartials(under: path.root, log: context.logger,
                                                                stream: path.stream(ofRelative:)) {
            if let failure = RecordingFiles.appendIndex(finished, root: path.root) {
                context.logger.error("'\(finished.path)' is not in the index: \(failure)")
            }
        }
    }

    mutating func process(_ packet: Packet, _ context: NodeContext) async {
        if packet.kind == .event {
            guard let event = packet.event, let trigger = triggers.first(where: { $0.matches(event) }) else { return }
            // A trigger for a stream with no media yet has nothing to record.
            guard var stream = streams.take(packet.stream) else { return }
            let actions = stream.buffer.trigger(arrival: packet.receivedAt, reason: Self.reason(event, trigger))
            await perform(actions, on: &stream, context)
            await put(stream, context)
            return
        }
        var stream = streams.take(packet.stream) ?? StreamClips(name: packet.stream, buffer: ClipBuffer(
            preRoll: preRoll, postRoll: postRoll, maxClip: maxClip, maxBytes: bufferLimit))
        switch packet.kind {
        case .initSegment:
            if stream.initSegment != packet.payload || packet.discontinuity {
                await perform(stream.buffer.reset(), on: &stream, context)
                stream.initSegment = packet.payload
            }
        case .fragment:
            guard stream.initSegment != nil, let media = packet.media, let dts = media.dts, media.timescale > 0 else {
                context.stats.countDropped()
                break
            }
            if packet.discontinuity { await perform(stream.buffer.reset(), on: &stream, context) }
            let start = Double(dts) / Double(media.timescale)
            let fragment = ClipBuffer.Fragment(packet: packet, start: start,
                                               end: start + Double(media.duration ?? 0) / Double(media.timescale),
                                               keyframe: media.keyframe == true, arrival: packet.receivedAt)
            await perform(stream.buffer.fragment(fragment), on: &stream, context)
        default:
            break
        }
        await put(stream, context)
    }

    mutating func finish(_ context: NodeContext) async {
        for name in streams.streams {
            guard var stream = streams.take(name) else { continue }
            await perform(stream.buffer.finishClip(), on: &stream, context)
        }
    }

    private mutating func put(_ stream: StreamClips, _ context: NodeContext) async {
        if var evicted = streams.put(stream, for: stream.name) {
            await context.reportEvicted(stream: evicted.stream, capacity: streams.capacity)
            await perform(evicted.value.buffer.finishClip(), on: &evicted.value, context)
        }
    }

    /// "alarm area1": the event's name and its source or matched fields,
    /// printable and short (both can come from an MQTT payload).
    static func reason(_ event: Event, _ trigger: Trigger) -> String {
        let detail = event["source"]?.description ?? trigger.fields.sorted { $0.key < $1.key }.map { "\($0)=\($1)" }.joined(separator: " ")
        return UntrustedText.printable(detail.isEmpty ? event.name : "\(event.name) \(detail)", limit: 128)
    }

    private mutating func perform(_ actions: [ClipBuffer.Action], on stream: inout StreamClips, _ context: NodeContext) async {
        for action in actions {
            switch action {
            case .start(let clip, let fragments):
                guard let initSegment = stream.initSegment else { continue }
                let target = path.path(stream: stream.name, node: id, time: Int(context.clock.wallNow))
                do {
                    // The clip begins with its pre-roll: its first frame arrived before the trigger.
                    stream.file = try RecordingFile(path: target, root: path.root, stream: stream.name, initSegment: initSegment,
                                                    wallStart: MonotonicClock.wallClock(of: clip.startArrival))
                    for fragment in fragments { try append(fragment, to: &stream) }
                    context.logger.info("stream \(stream.name): clip started for \(clip.reason)")
                } catch {
                    await fail(error, &stream, context)
                }
            case .write(let fragment):
                guard stream.file != nil else { continue }
                do { try append(fragment, to: &stream) } catch { await fail(error, &stream, context) }
            case .finish(let clip):
                guard var file = stream.file else { continue }
                stream.file = nil
                do {
                    var finished = try file.finish(sync: true)
                    finished.reason = clip.reason
                    await announce(finished, clip, context)
                } catch {
                    await fail(error, &stream, context)
                }
            case .longGOP(let seconds):
                context.logger.notice("stream \(stream.name): a GOP of \(String(format: "%.1f", seconds)) s is longer than the pre-roll of \(String(format: "%.1f", preRoll)) s; clips reach back to the keyframe before")
            case .bufferFull:
                if !stream.warnedBuffer {
                    stream.warnedBuffer = true
                    context.logger.warning("stream \(stream.name): 'buffer' (\(bufferLimit) bytes) holds less than the pre-roll; clips start later than asked")
                }
            }
        }
    }

    private func append(_ fragment: ClipBuffer.Fragment, to stream: inout StreamClips) throws {
        guard var file = stream.file else { return }
        defer { stream.file = file }
        try file.append(fragment.packet.payload, time: fragment.start, duration: fragment.end - fragment.start,
                        keyframe: fragment.keyframe, sync: false)
    }

    private mutating func fail(_ error: any Error, _ stream: inout StreamClips, _ context: NodeContext) async {
        context.logger.error("stream \(stream.name): \(error); this clip ends here")
        // The clip is over for the buffer too, so the next trigger starts a new one.
        _ = stream.buffer.finishClip()
        if var file = stream.file {
            stream.file = nil
            do throws(RecordingError) {
                _ = try file.finish(sync: false)
            } catch {
                context.logger.error("stream \(stream.name): \(error); the clip's file stays as it is")
            }
        }
        var fields: [(key: String, value: EventValue)] = []
        let refused: RecordingError? = switch error {
        case let error as RecordingError: error
        case WriteFailure.refused(let error): error
        default: nil
        }
        if let refused {
            fields = [("path", .string(refused.path)), ("errno", .int(Int64(refused.errno))),
                      ("cause", .string(refused.cause.rawValue))]
        }
        await events.emit("record-error", stream: stream.name, fields + [("message", .string("\(error)"))], context)
    }

    private mutating func announce(_ finished: FinishedRecording, _ clip: ClipBuffer.Clip, _ context: NodeContext) async {
        if let failure = RecordingFiles.appendIndex(finished, root: path.root) {
            context.logger.error("'\(finished.path)' is not in the index: \(failure)")
        }
        let end = finished.end ?? clip.end
        await events.emit("clip", stream: finished.stream, [
            ("path", .string(finished.path)), ("start", .double(finished.start ?? clip.start)), ("end", .double(end)),
            ("reason", .string(clip.reason)), ("triggers", .int(Int64(clip.triggers))),
            ("pre-roll", .double(clip.firstTrigger - (finished.start ?? clip.start))), ("post-roll", .double(end - clip.lastTrigger)),
            ("bytes", .int(Int64(finished.bytes))),
        ], context)
        await events.applyRetention(context)
    }
}

/// One stream's clip state.
private struct StreamClips {
    var name: String
    var buffer: ClipBuffer
    var initSegment: ByteBuffer?
    var file: RecordingFile?
    var warnedBuffer = false
}
