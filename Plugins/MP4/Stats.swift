import Camflow
import ISOBMFF
import NIOCore

/// Statistics of one track over one reporting interval, plus what carries
/// across intervals (GOP tracking, timeline, drift). A value, tested without tasks.
struct TrackStatistics {
    var track: UInt32
    var kind = "unknown"
    var codec: String?
    var width: Int?
    var height: Int?
    var timescale: UInt32 = 0

    // This interval.
    var frames = 0
    var bytes = 0
    var keyframes = 0
    /// Summed sample durations, in timescale units (exact, unlike summed seconds).
    var mediaTicks: Int64 = 0
    var mediaSeconds: Double { timescale > 0 ? Double(mediaTicks) / Double(timescale) : 0 }
    var gopSeconds: [Double] = []
    var gopFrames: [Int] = []
    var gaps = 0
    var gapSeconds = 0.0
    var fragments = 0
    var fragmentSeconds = 0.0

    // Across intervals.
    var totalFrames = 0
    var totalBytes = 0
    private var lastKeyframeTime: Double?
    private var framesSinceKeyframe = 0
    private(set) var expectedNextTime: Double?
    private var origin: (arrival: UInt64, media: Double)?
    var driftMilliseconds = 0.0
    var maxDriftMilliseconds = 0.0

    init(track: UInt32) { self.track = track }

    mutating func describe(_ info: Track) {
        kind = info.isVideo ? "video" : info.isAudio ? "audio" : info.handler.description
        codec = info.codec
        width = info.width
        height = info.height
        timescale = info.timescale
    }

    /// One sample: times in the track's timescale, `arrival` in monotonic ns.
    mutating func add(dts: Int64, pts: Int64, duration: Int64, size: Int, keyframe: Bool, arrival: UInt64) {
        guard timescale > 0 else { return }
        let scale = Double(timescale)
        let time = Double(dts) / scale
        let length = Double(duration) / scale
        frames += 1
        totalFrames += 1
        bytes += size
        totalBytes += size
        // Durations come from the wire: saturate rather than trap.
        let (ticks, overflow) = mediaTicks.addingReportingOverflow(max(duration, 0))
        mediaTicks = overflow ? .max : ticks
        // A gap: the sample starts later than the previous one ended (half a frame of slack).
        if let expected = expectedNextTime, time - expected > max(length, 0.001) / 2 {
            gaps += 1
            gapSeconds += time - expected
        }
        expectedNextTime = time + length
        // GOPs are a video notion; every audio frame is a sync sample.
        if keyframe, kind == "video" {
            keyframes += 1
            let presentation = Double(pts) / scale
            if let last = lastKeyframeTime, presentation >= last {
                gopSeconds.append(presentation - last)
                gopFrames.append(framesSinceKeyframe + 1)
            }
            lastKeyframeTime = presentation
            framesSinceKeyframe = 0
        } else if kind == "video" {
            framesSinceKeyframe += 1
        }
        // Drift: how far arrival has run ahead of (or behind) media time since the first sample.
        if let origin {
            let arrived = Double(arrival &- origin.arrival) / 1e9
            driftMilliseconds = (arrived - (time - origin.media)) * 1000
            maxDriftMilliseconds = max(maxDriftMilliseconds, abs(driftMilliseconds))
        } else {
            origin = (arrival, time)
        }
    }

    /// Forgets where the timeline was: after a discontinuity (a restarted
    /// clock, a looped file, a new init segment), the next sample starts a
    /// new one instead of measuring a negative or huge step from the last.
    mutating func restartTimeline() {
        lastKeyframeTime = nil
        framesSinceKeyframe = 0
        expectedNextTime = nil
        origin = nil
    }

    mutating func addFragment(seconds: Double) {
        fragments += 1
        fragmentSeconds += seconds
    }

    /// The event fields for this interval.
    func report(intervalSeconds: Double) -> [(key: String, value: EventValue)] {
        var fields: [(key: String, value: EventValue)] = [("track", .int(Int64(track))), ("kind", .string(kind))]
        if let codec { fields.append(("codec", .string(codec))) }
        if let width, let height { fields.append(("resolution", .string("\(width)x\(height)"))) }
        let seconds = mediaSeconds > 0 ? mediaSeconds : intervalSeconds
        fields.append(("frames", .int(Int64(frames))))
        fields.append(("fps", .double(seconds > 0 ? Double(frames) / seconds : 0)))
        fields.append(("bitrate-bps", .int(seconds > 0 ? Int64(Double(bytes * 8) / seconds) : 0)))
        fields.append(("bytes", .int(Int64(bytes))))
        if kind == "video" { fields.append(("keyframes", .int(Int64(keyframes)))) }
        if !gopSeconds.isEmpty {
            let mean = gopSeconds.reduce(0, +) / Double(gopSeconds.count)
            let variance = gopSeconds.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(gopSeconds.count)
            fields.append(("gop-frames", .double(Double(gopFrames.reduce(0, +)) / Double(gopFrames.count))))
            fields.append(("gop-seconds", .double(mean)))
            fields.append(("gop-jitter-seconds", .double(variance.squareRoot())))
        }
        if fragments > 0 { fields.append(("fragment-seconds", .double(fragmentSeconds / Double(fragments)))) }
        fields.append(("gaps", .int(Int64(gaps))))
        if gaps > 0 { fields.append(("gap-seconds", .double(gapSeconds))) }
        fields.append(("drift-ms", .double(driftMilliseconds)))
        fields.append(("max-drift-ms", .double(maxDriftMilliseconds)))
        fields.append(("total-frames", .int(Int64(totalFrames))))
        fields.append(("total-bytes", .int(Int64(totalBytes))))
        return fields
    }

    /// Clears the interval's counters; keeps what spans intervals.
    mutating func startInterval() {
        frames = 0
        bytes = 0
        keyframes = 0
        mediaTicks = 0
        gopSeconds = []
        gopFrames = []
        gaps = 0
        gapSeconds = 0
        fragments = 0
        fragmentSeconds = 0
    }
}

/// `stats`: per stream and track, every `interval` of media time and at end
/// of stream, an event with rates, sizes, GOP structure, gaps and drift.
struct Stats: PacketProcessor {
    static let type = NodeType(
        name: "stats",
        summary: "Emits per-track statistics events: fps, bitrate, GOP length and jitter, gaps, drift.",
        details: """
            Each track reports once per 'interval' of its own media time (so a fast replay reports \
            as often, per second of video, as a live camera) and once at end of stream, as a 'stats' \
            event with: kind, codec, resolution, frames, fps, bitrate-bps, bytes, keyframes (video), \
            gop-frames, gop-seconds, gop-jitter-seconds, fragment-seconds, gaps (and gap-seconds), \
            drift-ms and max-drift-ms (arrival time against media time since the first sample), \
            total-frames, total-bytes and interval-seconds. Reads frames when they flow, \
            else the samples of each fragment. A decode time that steps back, or jumps forward by \
            more than 'max-jump', without a new init segment (a camera that restarted its clock, a \
            looped file) is a discontinuity: the interval so far is reported, a 'discontinuity' \
            event says where (track, from-seconds, to-seconds, direction), and measuring starts \
            afresh, so no interval, rate or GOP is ever negative. At most 64 tracks per stream.
            """,
        options: [
            OptionSpec("interval", .duration, default: "5s", above: "0s", "Media time between reports."),
            OptionSpec("max-jump", .duration, default: "60s", above: "0s",
                       "A forward step in decode time larger than this is a discontinuity, not a gap."),
            .maxStreams(),
        ],
        accepts: [.initSegment, .fragment, .frame, .event],
        emits: .kinds(.event),
        make: { options in
            Stats(interval: try options.duration("interval").seconds, maxJump: try options.duration("max-jump").seconds,
                  maxStreams: try options.maxStreams())
        })

    /// Tracks measured per stream; track ids beyond it are ignored.
    static let maxTracks = 64

    let interval: Double
    let maxJump: Double
    private var streams: StreamTable<StreamStatistics>
    private var sequence: UInt64 = 0

    init(interval: Double, maxJump: Double = 60, maxStreams: Int = 64) {
        self.interval = interval
        self.maxJump = maxJump
        self.streams = StreamTable(capacity: maxStreams)
    }

    /// What the node keeps of one stream.
    private struct StreamStatistics {
        var media = StreamMedia()
        var tracks: [UInt32: TrackReporter] = [:]
        var hasFrames = false
        /// Whether an init segment or fragment that does not parse was logged: once a stream, not once a packet.
        var warnedUnreadable = false

        /// The reporter of `track`, new if need be; nil past ``Stats/maxTracks``.
        func reporter(_ track: UInt32) -> TrackReporter? {
            if let existing = tracks[track] { return existing }
            guard tracks.count < Stats.maxTracks else { return nil }
            var statistics = TrackStatistics(track: track)
            if let info = media.track(track) { statistics.describe(info) }
            return TrackReporter(statistics: statistics)
        }
    }

    /// A track's statistics and the start of its current interval.
    private struct TrackReporter {
        var statistics: TrackStatistics
        var intervalStart: Double?
    }

    mutating func process(_ packet: Packet, _ context: NodeContext) async throws {
        guard packet.kind != .event, packet.kind != .bytes else { return }
        var stream = streams.take(packet.stream) ?? StreamStatistics()
        await process(packet, stream: &stream, context)
        if let evicted = streams.put(stream, for: packet.stream) {
            await context.reportEvicted(stream: evicted.stream, capacity: streams.capacity)
        }
    }

    /// A packet the statistics leave out because it does not parse: said once a stream.
    private func warnUnreadable(_ what: String, _ error: ParseError, _ stream: inout StreamStatistics, _ packet: Packet,
                                _ context: NodeContext) {
        guard !stream.warnedUnreadable else { return }
        stream.warnedUnreadable = true
        context.logger.warning("stream \(packet.stream): \(what) that does not parse is left out of the statistics (\(error.code.rawValue) at byte \(error.offset)); further ones are not logged")
    }

    private mutating func process(_ packet: Packet, stream: inout StreamStatistics, _ context: NodeContext) async {
        switch packet.kind {
        case .initSegment:
            if let error = stream.media.update(with: packet) { warnUnreadable("an init segment", error, &stream, packet, context) }
            // A new init segment starts a new timeline: times may restart without it being a discontinuity.
            for track in stream.tracks.keys {
                stream.tracks[track]?.statistics.restartTimeline()
                stream.tracks[track]?.intervalStart = nil
            }
        case .frame:
            stream.hasFrames = true
            if let media = packet.media {
                await add(to: &stream, name: packet.stream, track: media.track, dts: media.dts ?? 0,
                          pts: media.pts ?? media.dts ?? 0, duration: media.duration ?? 0,
                          size: packet.payload.readableBytes, keyframe: packet.isKeyframe,
                          arrival: packet.receivedAt, context)
            }
        case .fragment:
            if let media = packet.media, media.timescale > 0, var reporter = stream.reporter(media.track) {
                reporter.statistics.addFragment(seconds: Double(media.duration ?? 0) / Double(media.timescale))
                stream.tracks[media.track] = reporter
            }
            guard !stream.hasFrames else { break }
            let fragment: Fragment?
            do throws(ParseError) {
                fragment = try stream.media.fragment(packet)
            } catch {
                warnUnreadable("a fragment", error, &stream, packet, context)
                fragment = nil
            }
            if let fragment {
                for sample in fragment.samples {
                    await add(to: &stream, name: packet.stream, track: sample.track, dts: sample.dts, pts: sample.pts,
                              duration: Int64(sample.duration), size: Int(sample.size), keyframe: sample.isSync,
                              arrival: packet.receivedAt, context)
                }
            }
        case .event, .bytes:
            break
        }
    }

    mutating func finish(_ context: NodeContext) async throws {
        for name in streams.streams {
            guard var stream = streams.take(name) else { continue }
            for track in stream.tracks.keys.sorted() {
                guard var reporter = stream.tracks[track] else { continue }
                let end = reporter.statistics.currentEnd ?? 0
                await report(&reporter, stream: name, length: max(0, end - (reporter.intervalStart ?? end)), context)
                stream.tracks[track] = reporter
            }
        }
    }

    /// Adds a sample, first closing the track's interval when the sample
    /// starts after it, or the timeline when the sample breaks it.
    private mutating func add(to stream: inout StreamStatistics, name: String, track: UInt32, dts: Int64, pts: Int64,
                              duration: Int64, size: Int, keyframe: Bool, arrival: UInt64,
                              _ context: NodeContext) async {
        guard var reporter = stream.reporter(track) else { return }
        if reporter.statistics.timescale == 0, let info = stream.media.track(track) {
            reporter.statistics.describe(info)
        }
        let timescale = reporter.statistics.timescale
        guard timescale > 0 else { return }
        let time = Double(dts) / Double(timescale)
        if let expected = reporter.statistics.currentEnd {
            let slack = max(1.0, Double(max(duration, 0)) / Double(timescale))
            if time < expected - slack || time - expected > maxJump {
                await report(&reporter, stream: name, length: max(0, expected - (reporter.intervalStart ?? expected)),
                             context)
                await context.emit(.event(Event("discontinuity", [
                    ("track", .int(Int64(track))), ("from-seconds", .double(expected)), ("to-seconds", .double(time)),
                    ("direction", .string(time < expected ? "backward" : "forward")),
                ]), stream: name, sequence: sequence))
                sequence += 1
                reporter.statistics.restartTimeline()
                reporter.intervalStart = nil
            }
        }
        let start = reporter.intervalStart ?? time
        if time - start >= interval {
            await report(&reporter, stream: name, length: interval, context)
            reporter.intervalStart = start + interval * ((time - start) / interval).rounded(.down)
        } else {
            reporter.intervalStart = start
        }
        reporter.statistics.add(dts: dts, pts: pts, duration: duration, size: size, keyframe: keyframe, arrival: arrival)
        stream.tracks[track] = reporter
    }

    private mutating func report(_ reporter: inout TrackReporter, stream: String, length: Double,
                                 _ context: NodeContext) async {
        guard reporter.statistics.frames > 0 || reporter.statistics.fragments > 0 else { return }
        var fields = reporter.statistics.report(intervalSeconds: length)
        fields.append(("interval-seconds", .double(length)))
        await context.emit(.event(Event("stats", fields), stream: stream, sequence: sequence))
        sequence += 1
        reporter.statistics.startInterval()
    }
}

extension TrackStatistics {
    /// Media time where the last sample ended, in seconds.
    var currentEnd: Double? { expectedNextTime }
}
