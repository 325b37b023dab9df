import Camflow
import ISOBMFF
import NIOCore

/// Decides keyframes from the sync flag and the NAL unit types together and
/// measures GOPs. A value, tested without tasks.
struct KeyframeDetector {
    /// A keyframe as reported in a `keyframe` event.
    struct Keyframe: Equatable {
        var track: UInt32
        var pts: Int64
        var timescale: UInt32
        var size: Int
        /// Frames and media time since the previous keyframe; nil for the first.
        var gopFrames: Int?
        var gopSeconds: Double?
        /// The sync flag said otherwise.
        var disagreed: Bool
    }

    private struct TrackState {
        var lastKeyframePTS: Int64?
        var framesSinceKeyframe = 0
    }

    private var tracks: [UInt32: TrackState] = [:]
    /// Frames whose sync flag and NAL types disagreed.
    private(set) var disagreements = 0
    private(set) var keyframes = 0

    /// Looks at one video frame. `sync` is the container's flag, `nal` what
    /// its NAL units say (nil when unreadable). Returns the decision and, for
    /// a keyframe, its report.
    mutating func frame(track: UInt32, pts: Int64, timescale: UInt32, size: Int, sync: Bool,
                        nal: NALSummary?) -> (isKeyframe: Bool, keyframe: Keyframe?) {
        // NAL types are what a decoder goes by; some encoders flag every frame as sync.
        let isKeyframe = nal?.isKeyframe ?? sync
        let disagreed = nal != nil && nal?.isKeyframe != sync
        if disagreed { disagreements += 1 }
        var state = tracks[track] ?? TrackState()
        defer { tracks[track] = state }
        guard isKeyframe else {
            state.framesSinceKeyframe += 1
            return (false, nil)
        }
        keyframes += 1
        var report = Keyframe(track: track, pts: pts, timescale: timescale, size: size, disagreed: disagreed)
        // A pts before the previous keyframe's is a restarted clock, not a GOP: no length for it.
        if let last = state.lastKeyframePTS, pts >= last {
            report.gopFrames = state.framesSinceKeyframe + 1
            let (ticks, overflow) = pts.subtractingReportingOverflow(last)
            let length = overflow ? Double(pts) - Double(last) : Double(ticks)
            report.gopSeconds = timescale > 0 ? length / Double(timescale) : nil
        }
        state.lastKeyframePTS = pts
        state.framesSinceKeyframe = 0
        return (true, report)
    }
}

/// `keyframes`: marks keyframes, reports each one as an event, and
/// optionally passes only keyframes.
struct Keyframes: PacketProcessor {
    static let type = NodeType(
        name: "keyframes",
        summary: "Marks keyframes by sync flag and NAL types, emits a keyframe event per keyframe.",
        details: """
            A video frame is a keyframe when its NAL units hold an H.264 IDR or an H.265 IRAP \
            (BLA/IDR/CRA) picture; where they cannot be read, the container's sync flag decides. \
            Disagreements between the two are counted and reported (some encoders flag every frame \
            as sync). For each keyframe it emits an event 'keyframe' with the stream, track, pts \
            in seconds, GOP length in frames and seconds, and size. Frames pass through with their \
            keyframe flag set; fragments are analysed sample by sample when no frame packets flow. \
            With 'only' just keyframe frames (and fragments starting with one) pass, plus init \
            and event packets.
            """,
        options: [
            OptionSpec("only", .bool, default: "false", "Pass only keyframe frames, fragments that start with one, init and events."),
            .maxStreams(),
        ],
        accepts: [.initSegment, .fragment, .frame, .event],
        emits: .inputKindsAnd(.event),
        make: { options in
            Keyframes(onlyKeyframes: try options.bool("only"), maxStreams: try options.maxStreams())
        })

    let onlyKeyframes: Bool
    private var streams: StreamTable<KeyframeStream>
    private var eventSequence: UInt64 = 0

    init(onlyKeyframes: Bool = false, maxStreams: Int = 64) {
        self.onlyKeyframes = onlyKeyframes
        self.streams = StreamTable(capacity: maxStreams)
    }

    /// What the node keeps of one stream.
    private struct KeyframeStream {
        var media = StreamMedia()
        var detector = KeyframeDetector()
        var hasFrames = false
        var reportedDisagreement = false
    }

    mutating func process(_ packet: Packet, _ context: NodeContext) async throws {
        guard packet.kind != .event, packet.kind != .bytes else {
            await context.emit(packet)
            return
        }
        var stream = streams.take(packet.stream) ?? KeyframeStream()
        await process(packet, stream: &stream, context)
        if let evicted = streams.put(stream, for: packet.stream) {
            await context.reportEvicted(stream: evicted.stream, capacity: streams.capacity)
        }
    }

    private mutating func process(_ packet: Packet, stream: inout KeyframeStream, _ context: NodeContext) async {
        switch packet.kind {
        case .initSegment:
            if let error = stream.media.update(with: packet) {
                context.logger.warning("unreadable init segment in stream \(packet.stream): \(error)")
            }
            await context.emit(packet)
        case .frame:
            stream.hasFrames = true
            var packet = packet
            if let media = packet.media, let track = stream.media.track(media.track), let video = track.video {
                let nal = video.summarizeAnyForm(packet.payload)
                let decision = await examine(&stream, name: packet.stream, track: media.track, pts: media.pts ?? media.dts ?? 0,
                                             timescale: media.timescale, size: packet.payload.readableBytes,
                                             sync: media.keyframe ?? false, nal: nal, receivedAt: packet.receivedAt,
                                             context)
                packet.media?.keyframe = decision
            }
            if !onlyKeyframes || packet.isKeyframe { await context.emit(packet) }
        case .fragment:
            var packet = packet
            if !stream.hasFrames {
                do {
                    if let fragment = try stream.media.fragment(packet) {
                        var first = true
                        for sample in fragment.samples {
                            guard let track = stream.media.track(sample.track),
                                  let video = track.video else { continue }
                            let nal = try? video.summarize(fragment.data(of: sample))
                            let decision = await examine(&stream, name: packet.stream, track: sample.track, pts: sample.pts,
                                                         timescale: track.timescale, size: Int(sample.size),
                                                         sync: sample.isSync, nal: nal, receivedAt: packet.receivedAt,
                                                         context)
                            if first { packet.media?.keyframe = decision }
                            first = false
                        }
                    }
                } catch {
                    context.logger.warning("unreadable fragment in stream \(packet.stream): \(error)")
                }
            }
            if !onlyKeyframes || packet.isKeyframe { await context.emit(packet) }
        case .event, .bytes:
            await context.emit(packet)
        }
    }

    /// Runs the detector on one video frame; emits the keyframe event.
    private mutating func examine(_ state: inout KeyframeStream, name stream: String, track: UInt32, pts: Int64,
                                  timescale: UInt32, size: Int, sync: Bool, nal: NALSummary?, receivedAt: UInt64,
                                  _ context: NodeContext) async -> Bool {
        let before = state.detector.disagreements
        let (isKeyframe, report) = state.detector.frame(track: track, pts: pts, timescale: timescale, size: size,
                                                        sync: sync, nal: nal)
        if state.detector.disagreements > before, !state.reportedDisagreement {
            state.reportedDisagreement = true
            context.logger.notice("stream \(stream): sync flags and NAL types disagree; going by NAL types")
        }
        let disagreements = state.detector.disagreements
        guard let report else { return isKeyframe }
        var fields: [(key: String, value: EventValue)] = [
            ("track", .int(Int64(report.track))),
            ("pts", .double(report.timescale > 0 ? Double(report.pts) / Double(report.timescale) : 0)),
            ("size", .int(Int64(report.size))),
        ]
        if let frames = report.gopFrames { fields.append(("gop-frames", .int(Int64(frames)))) }
        if let seconds = report.gopSeconds { fields.append(("gop-seconds", .double(seconds))) }
        fields.append(("disagreements", .int(Int64(disagreements))))
        defer { eventSequence += 1 }
        await context.emit(.event(Event("keyframe", fields), stream: stream, sequence: eventSequence,
                                  receivedAt: receivedAt))
        return isKeyframe
    }
}
