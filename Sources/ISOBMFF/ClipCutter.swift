public import NIOCore

/// Cuts a wall-clock range out of recordings, one file after another, into
/// one standalone fragmented MP4: the first file's init segment, then
/// fragments that start at the keyframe at or before the range's start and
/// stop at its end (to the frame), with decode times made continuous
/// across files. A value fed parsed boxes, tested without I/O.
///
/// A frame's wall-clock time is its file's `wall_start` plus its media time
/// since the file's first frame.
public struct ClipCutter: Sendable {
    public enum Failure: Error, Equatable, Sendable, CustomStringConvertible {
        /// A group of pictures longer than the buffer allows, while seeking the start.
        case gopTooLarge(Int)

        public var description: String {
            switch self {
            case .gopTooLarge(let bytes): "a group of pictures holds more than \(bytes) bytes"
            }
        }
    }

    public let start: Double
    public let end: Double
    /// Bytes held while seeking the start: one GOP.
    public let maxGOPBytes: Int
    /// The output is complete: the range's end was reached, or a file's
    /// init segment differs from the first one's (another picture size).
    public private(set) var done = false
    public private(set) var wroteInit = false

    private var firstInit: ByteBuffer?
    private var initSegment: InitSegment?
    private var timeline: Track?
    private var fileWallStart = 0.0
    /// Media seconds of the file's first timeline frame.
    private var fileOrigin: Double?
    private var fileStarted = false
    /// Output ticks minus input ticks, per track.
    private var shift: [UInt32: Int64] = [:]
    /// Where the last file's timeline ended: input (media seconds) and output (ticks).
    private var lastInputEnd: Double?
    private var outputEnd: Int64 = 0
    /// The wall-clock time of the clip's first frame, once chosen.
    private var clipStart: Double?
    /// Frames from the latest keyframe at or before `start`, while seeking it.
    private var held: [WritableSample] = []
    private var heldBytes = 0
    /// The wall-clock time of the keyframe held.
    private var heldWall = 0.0
    /// Frames to write first: the GOP held when its file ended before the start was passed.
    private var carried: [WritableSample] = []
    private var sequence: UInt32 = 1

    public init(start: Double, end: Double, maxGOPBytes: Int = 16 << 20) {
        self.start = start
        self.end = end
        self.maxGOPBytes = maxGOPBytes
    }

    /// The next file, begun at `wallStart`.
    public mutating func beginFile(wallStart: Double) {
        // A file that ended while its GOP was held for a start beyond it (the start lies in
        // its last GOP, or in a gap): the clip begins with that GOP, in that file's times.
        if clipStart == nil, !held.isEmpty, let initSegment, startShifts(first: held[0], initSegment: initSegment) {
            clipStart = heldWall
            carried = held.compactMap(shifted)
            if let timeline, let last = carried.last(where: { $0.track == timeline.id }) {
                guard let end = Self.end(of: last) else {
                    done = true
                    return
                }
                outputEnd = end
            }
            held.removeAll()
            heldBytes = 0
        }
        fileWallStart = wallStart
        fileOrigin = nil
        fileStarted = false
    }

    /// A file's init segment; the first is written out.
    public mutating func take(initSegment bytes: ByteBuffer, parsed: InitSegment) -> ByteBuffer? {
        guard !done else { return nil }
        if let firstInit {
            if firstInit != bytes { done = true }
            return nil
        }
        firstInit = bytes
        initSegment = parsed
        timeline = parsed.tracks.first(where: \.isVideo) ?? parsed.tracks.first
        return nil
    }

    /// A fragment of the current file; returns what to write (the init
    /// segment before the first fragment written).
    public mutating func take(fragment: Fragment) throws(Failure) -> [ByteBuffer] {
        guard !done, let timeline, let initSegment, timeline.timescale > 0 else { return [] }
        let scale = Double(timeline.timescale)
        var out = carried
        carried.removeAll()
        // Timeline frames first, so other tracks (audio) are judged by the frames around them.
        let ordered = fragment.samples.filter { $0.track == timeline.id } + fragment.samples.filter { $0.track != timeline.id }
        var timelineEnded = false
        for sample in ordered {
            // Times a recording cannot hold (a hostile camera's tfdt) are passed over, never trap:
            // magnitudes compare as UInt64, which Int64.min has too.
            guard let trackScale = initSegment.track(sample.track)?.timescale, trackScale > 0,
                  sample.dts.magnitude < Self.maxTicks.magnitude, sample.pts.magnitude < Self.maxTicks.magnitude
            else { continue }
            let media = Double(sample.dts) / Double(trackScale)
            if sample.track == timeline.id, fileOrigin == nil {
                fileOrigin = media
                // A new file continues the last one's decode times when its media time does; otherwise it is joined on.
                if let lastInputEnd, clipStart != nil, abs(media - lastInputEnd) > 1 {
                    for track in initSegment.tracks {
                        guard let offset = Self.ticks(Double(outputEnd) / scale - media, track.timescale) else {
                            done = true
                            break
                        }
                        shift[track.id] = offset
                    }
                    if done { break }
                }
            }
            guard let origin = fileOrigin else { continue } // audio before the first frame of the file
            let wall = fileWallStart + media - origin
            let writable = WritableSample(sample, of: fragment)
            if sample.track == timeline.id {
                if wall >= end { timelineEnded = true; continue }
                if clipStart == nil {
                    if writable.isSync, wall <= start || held.isEmpty {
                        if wall <= start {
                            // A later keyframe at or before the start replaces the GOP held.
                            held = [writable]
                            heldBytes = writable.data.readableBytes
                            heldWall = wall
                            continue
                        }
                        clipStart = wall // no keyframe at or before the start: begin at the first after it
                    } else if held.isEmpty {
                        continue
                    } else if wall > start {
                        clipStart = heldWall
                    } else {
                        try hold(writable)
                        continue
                    }
                } else if !fileStarted, !writable.isSync {
                    continue // a file joined on starts at a keyframe
                }
                fileStarted = true
            } else {
                guard let clipStart, fileStarted, wall >= clipStart, wall < end else {
                    if clipStart == nil, !held.isEmpty, wall >= heldWall { try hold(writable) }
                    continue
                }
            }
            if shift.isEmpty, !startShifts(first: held.first ?? writable, initSegment: initSegment) { break }
            if !held.isEmpty {
                out += held.compactMap(shifted)
                held.removeAll()
                heldBytes = 0
            }
            guard let moved = shifted(writable) else { continue }
            out.append(moved)
            if sample.track == timeline.id {
                guard let end = Self.end(of: moved) else {
                    done = true
                    break
                }
                outputEnd = end
            }
        }
        if let last = fragment.samples.last(where: { $0.track == timeline.id }) {
            // In floating point: the sum of a hostile decode time and a duration may not fit 64 bits.
            lastInputEnd = (Double(last.dts) + Double(last.duration)) / scale
        }
        if timelineEnded { done = true }
        return write(out, timeline: timeline.id)
    }

    /// What is left once the last file has been read: the GOP held when the
    /// start lies in the last file's last GOP.
    public mutating func finish() -> [ByteBuffer] {
        guard let timeline else { return [] }
        beginFile(wallStart: fileWallStart)
        let out = carried
        carried.removeAll()
        done = true
        return write(out, timeline: timeline.id)
    }

    /// Samples as one fragment, after the init segment if it is not written yet.
    private mutating func write(_ samples: [WritableSample], timeline: UInt32) -> [ByteBuffer] {
        let out = Self.withoutEmptyFrames(samples)
        let timelineOut = out.filter { $0.track == timeline }
        guard !out.isEmpty else { return [] }
        var buffers: [ByteBuffer] = []
        if !wroteInit, let firstInit {
            guard timelineOut.first?.isSync == true else { return [] }
            buffers.append(firstInit)
            wroteInit = true
        }
        if let bytes = FragmentWriter.fragment(sequenceNumber: sequence, samples: timelineOut + out.filter { $0.track != timeline }) {
            sequence &+= 1
            buffers.append(bytes)
        }
        return buffers
    }

    /// Frames without bytes carry nothing to decode, and a fragment with
    /// more frames than its mdat has bytes reads as a bomb (the parser
    /// refuses it): they are left out, their durations added to the frame
    /// before on their track, so the times after them stay where they were.
    static func withoutEmptyFrames(_ samples: [WritableSample]) -> [WritableSample] {
        var out: [WritableSample] = []
        out.reserveCapacity(samples.count)
        var last: [UInt32: Int] = [:]
        for sample in samples {
            guard sample.data.readableBytes == 0 else {
                last[sample.track] = out.count
                out.append(sample)
                continue
            }
            if let index = last[sample.track] {
                let (sum, overflow) = out[index].duration.addingReportingOverflow(sample.duration)
                if !overflow { out[index].duration = sum }
            }
        }
        return out
    }

    /// Keeps a sample of the GOP that may hold the start, within the byte limit.
    private mutating func hold(_ sample: WritableSample) throws(Failure) {
        held.append(sample)
        heldBytes += sample.data.readableBytes + 16
        guard heldBytes <= maxGOPBytes else { throw .gopTooLarge(maxGOPBytes) }
    }

    /// The clip's decode times start at zero: each track is shifted by the first frame's time.
    private mutating func startShifts(first: WritableSample, initSegment: InitSegment) -> Bool {
        guard let timeline, timeline.timescale > 0 else { return false }
        let origin = Double(first.dts) / Double(timeline.timescale)
        for track in initSegment.tracks {
            guard let ticks = Self.ticks(-origin, track.timescale) else {
                done = true
                return false
            }
            shift[track.id] = ticks
        }
        return true
    }

    /// `seconds` in `timescale` ticks, when that is a time a recording can hold.
    public static func ticks(_ seconds: Double, _ timescale: UInt32) -> Int64? {
        let value = (seconds * Double(timescale)).rounded()
        guard value.isFinite, abs(value) < Double(maxTicks) else { return nil }
        return Int64(value)
    }

    /// Decode times beyond this (about 2^52 ticks) are refused: they would
    /// overflow once shifted, or lose precision as seconds.
    public static let maxTicks: Int64 = 1 << 52

    /// Where `sample` ends in decode time; nil when that does not fit 64 bits.
    public static func end(of sample: WritableSample) -> Int64? {
        let (end, overflow) = sample.dts.addingReportingOverflow(Int64(sample.duration))
        return overflow ? nil : end
    }

    private func shifted(_ sample: WritableSample) -> WritableSample? {
        var moved = sample
        let offset = shift[sample.track] ?? 0
        let (dts, dtsOverflow) = sample.dts.addingReportingOverflow(offset)
        let (pts, ptsOverflow) = sample.pts.addingReportingOverflow(offset)
        // Within what the parser accepts: the clip reads back, in camflow and elsewhere.
        let limit = Fragment.maxTicks(timescale: initSegment?.track(sample.track)?.timescale ?? 1).magnitude
        let (end, endOverflow) = dts.addingReportingOverflow(Int64(sample.duration))
        guard !dtsOverflow, !ptsOverflow, !endOverflow, dts.magnitude <= limit, pts.magnitude <= limit,
              end.magnitude <= limit else { return nil }
        moved.dts = dts
        moved.pts = pts
        return moved
    }
}
