import Foundation
import ISOBMFF
import NIOCore

/// One LL-HLS part: a fragment of whole frames, written by ``FragmentWriter``.
struct HLSPart: Sendable {
    let duration: Double
    /// Starts with a keyframe.
    let independent: Bool
    let bytes: ByteBuffer
}

/// One media segment: parts from a keyframe up to the next segment's keyframe.
struct HLSSegment: Sendable {
    /// Media sequence number.
    let msn: Int
    let initVersion: Int
    /// A discontinuity (a new init segment, a reconnect) comes before it.
    let discontinuity: Bool
    /// When its first frame arrived (`EXT-X-PROGRAM-DATE-TIME`), ISO 8601.
    let programDateTime: String
    var parts: [HLSPart] = []
    var duration: Double = 0
    var bytes = 0
    var complete = false
}

/// The latest keyframe of a stream, with what decodes it alone.
struct LatestKeyframe: Sendable {
    /// Counts keyframes: a snapshot is decoded once per keyframe.
    let number: Int
    let initSegment: ByteBuffer
    let sample: WritableSample
    let width: Int?
    let height: Int?
    /// The sample entry (`avc1`, `hev1`): which decoder reads it.
    let codec: FourCC?

    /// A standalone MP4 of the keyframe alone: init segment and one fragment.
    var mp4: ByteBuffer? {
        var single = sample
        single.dts = 0
        single.pts = 0
        guard let fragment = FragmentWriter.fragment(sequenceNumber: 1, samples: [single]) else { return nil }
        var out = ByteBufferAllocator().buffer(capacity: initSegment.readableBytes + fragment.readableBytes)
        out.writeImmutableBuffer(initSegment)
        out.writeImmutableBuffer(fragment)
        return out
    }
}

/// Turns one stream's init segments and fragments into LL-HLS: segments
/// that start at keyframes, cut into parts of at most `partTarget` at frame
/// boundaries (so a camera's GOP-long fragments still give short parts), a
/// bounded window, and the playlist. A value, tested without concurrency;
/// ``HLSStore`` shares it with the server.
struct HLSTimeline: Sendable {
    struct Configuration: Sendable {
        /// Longest part, in seconds (`PART-TARGET`).
        var partTarget: Double = 0.5
        /// Complete segments kept, besides the one being filled.
        var windowSegments: Int = 6
        /// A segment beyond this many bytes (a stream without keyframes) is dropped.
        var maxSegmentBytes: Int = 16 << 20
        /// A keyframe starts a new segment once the current one is this long.
        var minSegment: Double { max(1, 2 * partTarget) }
        /// The first media sequence number and init version. A stream dropped
        /// and made again starts past its old numbers, so a URI a client cached
        /// never names other bytes.
        var firstSequence = 0
    }

    let configuration: Configuration
    private(set) var initSegment: InitSegment?
    private(set) var initVersion = 0
    /// Window segments; the last one is being filled unless it is complete.
    private(set) var segments: [HLSSegment] = []
    /// Init segments still named by a segment of the window, by version.
    private(set) var inits: [Int: ByteBuffer] = [:]
    /// Rises with the longest segment seen; a playlist's target never shrinks.
    private(set) var targetDuration = 1
    /// Discontinuities that left the window (`EXT-X-DISCONTINUITY-SEQUENCE`).
    private(set) var discontinuitySequence = 0
    /// Bumped by every new part or segment: what blocked requests wait on.
    private(set) var version: UInt64 = 0
    private(set) var latestKeyframe: LatestKeyframe?
    /// Fragments that did not parse.
    private(set) var rejectedFragments = 0

    private var timeline: Track?
    private var pending: [WritableSample] = []
    private var pendingTicks: Int64 = 0
    private var pendingBytes = 0
    private var pendingOther: [WritableSample] = []
    private var pendingOtherBytes = 0
    private var waitingForKeyframe = true
    private var needsDiscontinuity = false
    private var nextMSN = 0
    private var fragmentSequence: UInt32 = 1
    private var keyframes = 0

    init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        initVersion = configuration.firstSequence
        nextMSN = configuration.firstSequence
    }

    // MARK: Input

    /// Takes an init segment; a new one (other bytes) ends the current
    /// segment, and the next starts after a discontinuity.
    mutating func take(initSegment bytes: ByteBuffer) throws(ParseError) {
        if let current = inits[initVersion], current == bytes, initSegment != nil { return }
        let parsed = try InitSegment(parsing: bytes)
        closeSegment()
        initSegment = parsed
        initVersion += 1
        inits[initVersion] = bytes
        pruneInits()
        timeline = parsed.tracks.first(where: \.isVideo) ?? parsed.tracks.first
        restartAtKeyframe()
    }

    /// Takes a fragment: its frames join the current part, and new parts and
    /// segments are cut. Returns whether anything new can be served.
    @discardableResult
    mutating func take(fragment bytes: ByteBuffer, discontinuity: Bool, wallClock: Double) -> Bool {
        guard let initSegment, let timeline else { return false }
        let fragment: Fragment
        do {
            fragment = try Fragment(parsing: bytes, initSegment: initSegment)
        } catch {
            rejectedFragments += 1
            return false
        }
        let before = version
        if discontinuity {
            closeSegment()
            restartAtKeyframe()
        }
        // Other tracks (audio) wait to join the part their time falls in.
        let others = fragment.samples.filter { $0.track != timeline.id }.map { WritableSample($0, of: fragment) }
        if !waitingForKeyframe { holdOther(others) }
        let partTicks = Int64(configuration.partTarget * Double(timeline.timescale))
        for sample in fragment.samples where sample.track == timeline.id {
            let writable = WritableSample(sample, of: fragment)
            if waitingForKeyframe {
                guard writable.isSync else { continue }
                waitingForKeyframe = false
                // A segment starts at its keyframe: nothing older is kept.
                let start = seconds(writable.dts)
                pendingOther.removeAll()
                pendingOtherBytes = 0
                holdOther(others.filter { time(of: $0) >= start })
                startSegment(wallClock: wallClock)
            } else if writable.isSync, currentDuration + seconds(pendingTicks) >= configuration.minSegment {
                flushPart()
                closeSegment()
                startSegment(wallClock: wallClock)
            } else if !pending.isEmpty,
                      pendingTicks + Int64(sample.duration) > partTicks || pending.count >= Self.maxPartFrames {
                flushPart()
            }
            pending.append(writable)
            pendingTicks += Int64(sample.duration)
            pendingBytes += writable.data.readableBytes + Self.sampleOverhead
            if writable.isSync {
                keyframes += 1
                latestKeyframe = LatestKeyframe(number: keyframes, initSegment: inits[initVersion] ?? ByteBuffer(),
                                                sample: writable, width: timeline.width, height: timeline.height,
                                                codec: timeline.sampleEntry)
            }
            if let current = segments.last, !current.complete,
               current.bytes + pendingBytes + pendingOtherBytes > configuration.maxSegmentBytes {
                // No keyframe for too long: the segment ends with the parts already served,
                // what is held is dropped, and the next segment starts at a keyframe.
                pending.removeAll()
                pendingTicks = 0
                pendingBytes = 0
                closeSegment()
                restartAtKeyframe()
            }
        }
        return version != before
    }

    /// Frames of a part at most, whatever their durations (a stream of zero-length frames).
    static let maxPartFrames = 1024
    /// Bytes a sample costs beyond its data: its trun entry, counted against the segment limit.
    static let sampleOverhead = 16

    /// Keeps other tracks' samples for the parts they belong to, within the segment's byte limit.
    private mutating func holdOther(_ samples: [WritableSample]) {
        for sample in samples {
            pendingOther.append(sample)
            pendingOtherBytes += sample.data.readableBytes + Self.sampleOverhead
        }
    }

    /// Forgets init segments no segment of the window names.
    private mutating func pruneInits() {
        let named = Set(segments.map(\.initVersion))
        for version in inits.keys where !named.contains(version) && version != initVersion {
            inits[version] = nil
        }
    }

    // MARK: Output

    /// The segment numbered `msn` in the window.
    func segment(_ msn: Int) -> HLSSegment? {
        guard let first = segments.first, msn >= first.msn, msn - first.msn < segments.count else { return nil }
        return segments[msn - first.msn]
    }

    /// The newest segment with at least one part, and how many parts it has.
    var lastPart: (msn: Int, parts: Int)? {
        segments.last(where: { !$0.parts.isEmpty }).map { ($0.msn, $0.parts.count) }
    }

    /// Whether a blocking request for `msn` (and part `part`) can be answered:
    /// the segment is complete, or the part exists, or something later does.
    func has(msn: Int, part: Int?) -> Bool {
        guard let last = lastPart else { return false }
        if last.msn > msn { return true }
        guard last.msn == msn, let segment = segment(msn) else { return false }
        guard let part else { return segment.complete }
        return segment.parts.count > part
    }

    /// The media playlist, once a segment is complete (its length sets the
    /// target duration, which must not change afterwards). Parts are listed
    /// for the segments of the last three target durations, as clients at
    /// the live edge need no more.
    func playlist() -> String? {
        guard let first = segments.first, segments.contains(where: \.complete) else { return nil }
        var lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:9",
            "#EXT-X-TARGETDURATION:\(targetDuration)",
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=\(Self.decimal(3 * configuration.partTarget))",
            "#EXT-X-PART-INF:PART-TARGET=\(Self.decimal(configuration.partTarget))",
            "#EXT-X-MEDIA-SEQUENCE:\(first.msn)",
        ]
        if discontinuitySequence > 0 { lines.append("#EXT-X-DISCONTINUITY-SEQUENCE:\(discontinuitySequence)") }
        lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
        var partsFrom = segments.count
        var recent = 0.0
        while partsFrom > 0, recent < Double(3 * targetDuration) {
            partsFrom -= 1
            recent += segments[partsFrom].duration
        }
        var mapVersion: Int?
        for (index, segment) in segments.enumerated() {
            if segment.discontinuity { lines.append("#EXT-X-DISCONTINUITY") }
            if segment.initVersion != mapVersion {
                lines.append("#EXT-X-MAP:URI=\"init-\(segment.initVersion).mp4\"")
                mapVersion = segment.initVersion
            }
            lines.append("#EXT-X-PROGRAM-DATE-TIME:\(segment.programDateTime)")
            if index >= partsFrom {
                for (number, part) in segment.parts.enumerated() {
                    lines.append("#EXT-X-PART:DURATION=\(Self.decimal(part.duration)),URI=\"part-\(segment.msn).\(number).m4s\""
                                 + (part.independent ? ",INDEPENDENT=YES" : ""))
                }
            }
            if segment.complete {
                lines.append("#EXTINF:\(Self.decimal(segment.duration)),")
                lines.append("segment-\(segment.msn).m4s")
            }
        }
        if let last = segments.last {
            let hint = last.complete ? "part-\(last.msn + 1).0.m4s" : "part-\(last.msn).\(last.parts.count).m4s"
            lines.append("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"\(hint)\"")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: Cutting

    private var currentDuration: Double {
        guard let current = segments.last, !current.complete else { return 0 }
        return current.duration
    }

    private func seconds(_ ticks: Int64) -> Double {
        guard let timeline, timeline.timescale > 0 else { return 0 }
        return Double(ticks) / Double(timeline.timescale)
    }

    /// A sample's decode time in seconds, in its own track's timescale.
    private func time(of sample: WritableSample) -> Double {
        let scale = initSegment?.track(sample.track)?.timescale ?? 0
        return scale > 0 ? Double(sample.dts) / Double(scale) : 0
    }

    private mutating func restartAtKeyframe() {
        pending.removeAll()
        pendingOther.removeAll()
        pendingTicks = 0
        pendingBytes = 0
        pendingOtherBytes = 0
        waitingForKeyframe = true
        if !segments.isEmpty { needsDiscontinuity = true }
    }

    private mutating func startSegment(wallClock: Double) {
        segments.append(HLSSegment(msn: nextMSN, initVersion: initVersion, discontinuity: needsDiscontinuity,
                                   programDateTime: Self.iso8601(wallClock)))
        nextMSN += 1
        needsDiscontinuity = false
        version += 1
    }

    /// Writes the pending frames as a part of the current segment, with the
    /// other tracks' samples (audio) that start before the part ends.
    private mutating func flushPart() {
        guard !pending.isEmpty, let timeline, !segments.isEmpty, !segments[segments.count - 1].complete else {
            return
        }
        let last = pending[pending.count - 1]
        let end = Double(last.dts &+ Int64(last.duration)) / Double(max(timeline.timescale, 1))
        var samples = pending
        var keep: [WritableSample] = []
        pendingOtherBytes = 0
        for sample in pendingOther {
            if time(of: sample) < end {
                samples.append(sample)
            } else {
                keep.append(sample)
                pendingOtherBytes += sample.data.readableBytes + Self.sampleOverhead
            }
        }
        pendingOther = keep
        let duration = seconds(pendingTicks)
        let independent = pending[0].isSync
        pending.removeAll(keepingCapacity: true)
        pendingTicks = 0
        pendingBytes = 0
        guard let bytes = FragmentWriter.fragment(sequenceNumber: fragmentSequence, samples: samples) else {
            // Times a fragment cannot carry: the segment ends here, the next starts at a keyframe.
            rejectedFragments += 1
            closeSegment()
            restartAtKeyframe()
            return
        }
        fragmentSequence &+= 1
        segments[segments.count - 1].parts.append(HLSPart(duration: duration, independent: independent, bytes: bytes))
        segments[segments.count - 1].duration += duration
        segments[segments.count - 1].bytes += bytes.readableBytes
        version += 1
    }

    /// Completes the current segment and trims the window.
    private mutating func closeSegment() {
        flushPart()
        guard let last = segments.last, !last.complete else { return }
        if last.parts.isEmpty {
            segments.removeLast()
            return
        }
        segments[segments.count - 1].complete = true
        targetDuration = max(targetDuration, Int(last.duration.rounded()))
        version += 1
        while segments.count(where: \.complete) > configuration.windowSegments {
            let removed = segments.removeFirst()
            if removed.discontinuity { discontinuitySequence += 1 }
        }
        pruneInits()
    }

    static func decimal(_ value: Double) -> String {
        String(format: "%.3f", value)
    }

    static func iso8601(_ seconds: Double) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: seconds))
    }
}
