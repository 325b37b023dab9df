public import NIOCore

/// A fragment with new decode times, split for sending: the rewritten `moof`
/// (a copy of that box alone, a few hundred bytes) and everything after it
/// (the `mdat`, a slice of the original: the media is never copied).
public struct RebasedFragment: Sendable {
    public var moof: ByteBuffer
    public var rest: ByteBuffer

    /// `moof` then `rest` in one buffer (a copy): for callers that need one.
    public var joined: ByteBuffer {
        var out = ByteBufferAllocator().buffer(capacity: moof.readableBytes + rest.readableBytes)
        out.writeImmutableBuffer(moof)
        out.writeImmutableBuffer(rest)
        return out
    }
}

/// One receiver's own timeline over a live stream's fragments: what a client
/// of a camera sees, which starts a fresh stream for every connection, when
/// it joins a stream that has been running for hours.
///
/// Per track, the `tfdt` of every fragment loses the decode time of the
/// receiver's first fragment of that track, so the receiver's timeline starts
/// at 0 (a track that first appears later starts where the others are then).
/// ``restart(initSegment:)`` starts a new timeline at 0, as a reconnecting
/// camera's new init segment does. When a track's times jump (fragments the
/// receiver did not get, or the source's clock moved) by more than half its
/// last fragment's duration, the jump is taken out: the track continues where
/// it ended, and every other track jumping in the same fragment moves by the
/// same time, so audio stays with video. A page that appends fragments and
/// plays, never seeking, thus never meets a gap.
///
/// A value type with no I/O. Every value read is bounds-checked and every
/// sum checked: a fragment this cannot read, or whose times do not fit, is
/// left as it is (``rebase(_:)`` returns nil) rather than trapping.
/// A version 0 (32-bit) `tfdt` wraps after 2^32 ticks, as the source's own would.
public struct FragmentRebase: Sendable {
    /// One track's place on the receiver's timeline.
    struct Clock: Sendable {
        /// Units per second, from the init segment; 0 when unknown.
        var timescale: UInt32 = 0
        /// `trex` default sample duration.
        var defaultDuration: UInt32 = 0
        /// Ticks taken off the source's decode times; nil before the track's first fragment.
        var base: Int64?
        /// Where the source's next fragment of this track should start.
        var expected: Int64?
        /// Where this track's rebased timeline ends now.
        var rebasedEnd: Int64 = 0
        /// The last fragment's duration, for how far a jump may be and still be jitter.
        var lastDuration: Int64 = 0
    }

    /// One `traf` as read: where its `tfdt` value sits and what it says.
    struct TrackRun: Sendable {
        var track: UInt32
        /// Buffer index of the `tfdt` value, its version, and the value.
        var tfdt: (index: Int, version: UInt8, value: Int64)?
        /// Sum of the samples' durations; nil when it cannot be known.
        var duration: Int64?
    }

    /// Tracks followed at most; `traf`s of further tracks pass unchanged.
    public static let maxTracks = 16
    /// `traf`s read per fragment at most; a fragment with more passes unchanged.
    public static let maxTrackRuns = 64

    private var clocks: [UInt32: Clock] = [:]
    /// Jumps taken out so far (see the type's description).
    public private(set) var jumpsClosed: UInt64 = 0

    public init() {}

    /// A new timeline from 0 (a new init segment: a reconnect, new parameters,
    /// or a viewer that starts again). Its tracks' timescales and `trex`
    /// defaults are read from `initSegment`, when it parses.
    public mutating func restart(initSegment: ByteBuffer) {
        clocks.removeAll()
        guard let parsed = try? InitSegment(parsing: initSegment) else { return }
        for track in parsed.tracks.prefix(Self.maxTracks) {
            clocks[track.id] = Clock(timescale: track.timescale, defaultDuration: track.defaults.duration)
        }
    }

    /// The fragment (`moof` then `mdat`) on this receiver's timeline; nil when
    /// it is not a fragment this can read (send it unchanged then).
    public mutating func rebase(_ fragment: ByteBuffer) -> RebasedFragment? {
        guard let (moofRange, runs) = try? Self.read(fragment, defaults: clocks) else { return nil }
        var moof = ByteBufferAllocator().buffer(capacity: moofRange.count)
        moof.writeImmutableBuffer(fragment.getSlice(at: moofRange.lowerBound, length: moofRange.count) ?? ByteBuffer())
        // The first jump in this fragment, in ticks of its track: others jumping too move by the same time.
        var jump: (ticks: Int64, timescale: UInt32)?
        var placedNow: (ticks: Int64, timescale: UInt32)?
        for run in runs {
            guard clocks[run.track] != nil || clocks.count < Self.maxTracks else { continue }
            var clock = clocks[run.track] ?? Clock()
            guard let tfdt = run.tfdt else {
                // No tfdt: the source's times run on from the last fragment; so do the receiver's.
                clock.expected = Self.sum(clock.expected, run.duration)
                clock.rebasedEnd = Self.sum(clock.rebasedEnd, run.duration) ?? clock.rebasedEnd
                clocks[run.track] = clock
                continue
            }
            if clock.base == nil {
                // The track's first fragment: it starts where the receiver's timeline is now.
                let now = placedNow.flatMap { Self.convert($0.ticks, from: $0.timescale, to: clock.timescale) }
                    ?? latestEnd(in: clock.timescale) ?? 0
                clock.base = tfdt.value.subtractingReportingOverflow(now).overflow ? tfdt.value : tfdt.value - now
            } else if let expected = clock.expected {
                let (offset, overflow) = tfdt.value.subtractingReportingOverflow(expected)
                let tolerance = max(clock.lastDuration / 2, 0)
                if overflow || offset.magnitude > UInt64(tolerance) {
                    jumpsClosed &+= 1
                    let shared = jump.flatMap { Self.convert($0.ticks, from: $0.timescale, to: clock.timescale) }
                    if !overflow, jump == nil { jump = (offset, clock.timescale) }
                    clock.base = Self.sum(clock.base, shared ?? (overflow ? nil : offset))
                }
            }
            let value: Int64
            if let base = clock.base, case let (shifted, false) = tfdt.value.subtractingReportingOverflow(base),
               shifted >= 0 {
                value = shifted
            } else {
                // Not representable: the track continues where it ended.
                let (base, overflow) = tfdt.value.subtractingReportingOverflow(clock.rebasedEnd)
                clock.base = overflow ? tfdt.value : base
                value = overflow ? 0 : clock.rebasedEnd
            }
            if placedNow == nil, clock.timescale > 0 { placedNow = (value, clock.timescale) }
            let at = moof.readerIndex + tfdt.index - moofRange.lowerBound
            if tfdt.version == 1 {
                moof.setInteger(UInt64(value), at: at)
            } else {
                moof.setInteger(UInt32(truncatingIfNeeded: value), at: at)
            }
            clock.expected = Self.sum(tfdt.value, run.duration)
            clock.rebasedEnd = Self.sum(value, run.duration) ?? value
            clock.lastDuration = run.duration ?? 0
            clocks[run.track] = clock
        }
        let rest = fragment.getSlice(at: moofRange.upperBound, length: fragment.writerIndex - moofRange.upperBound) ?? ByteBuffer()
        return RebasedFragment(moof: moof, rest: rest)
    }

    /// The latest end of any track on the receiver's timeline, in `timescale` ticks.
    private func latestEnd(in timescale: UInt32) -> Int64? {
        clocks.values.compactMap { clock in
            clock.base == nil ? nil : Self.convert(clock.rebasedEnd, from: clock.timescale, to: timescale)
        }.max()
    }

    /// `ticks` of one timescale in another; nil when either is unknown or the result does not fit.
    static func convert(_ ticks: Int64, from: UInt32, to: UInt32) -> Int64? {
        guard from > 0, to > 0 else { return nil }
        if from == to { return ticks }
        let (product, overflow) = ticks.multipliedReportingOverflow(by: Int64(to))
        return overflow ? nil : product / Int64(from)
    }

    static func sum(_ a: Int64?, _ b: Int64?) -> Int64? {
        guard let a, let b else { return nil }
        let (total, overflow) = a.addingReportingOverflow(b)
        return overflow ? nil : total
    }

    /// The moof's byte range (buffer indices) and its `traf`s.
    static func read(_ fragment: ByteBuffer, defaults: [UInt32: Clock]) throws(ParseError) -> (Range<Int>, [TrackRun]) {
        var top = BoxReader(buffer: fragment, range: fragment.readerIndex..<fragment.writerIndex, streamOffset: 0,
                            path: "fragment")
        guard let first = try top.nextChild(), first.type == .moof else {
            throw ParseError(.invalidBoxHeader, "a fragment starts with a moof", offset: 0, path: "fragment")
        }
        var runs: [TrackRun] = []
        var trafs = first.reader
        while let traf = try trafs.nextChild(.traf) {
            guard runs.count < maxTrackRuns else {
                throw traf.error(.invalidField, "more than \(maxTrackRuns) track fragments")
            }
            var tfhd = try traf.required(.tfhd)
            let (_, flags) = try tfhd.fullBoxHeader()
            let track = try tfhd.u32("track_ID")
            if flags & 0x01 != 0 { try tfhd.skip(8, "base_data_offset") }
            if flags & 0x02 != 0 { try tfhd.skip(4, "sample_description_index") }
            var defaultDuration = defaults[track]?.defaultDuration ?? 0
            if flags & 0x08 != 0 { defaultDuration = try tfhd.u32("default_sample_duration") }
            var run = TrackRun(track: track, duration: 0)
            if var tfdt = try traf.child(.tfdt) {
                let (version, _) = try tfdt.fullBoxHeader()
                let index = tfdt.position
                let value = version == 1 ? Int64(bitPattern: try tfdt.u64("baseMediaDecodeTime"))
                                         : Int64(try tfdt.u32("baseMediaDecodeTime"))
                run.tfdt = (index, version, value)
            }
            var truns = traf
            while var trun = try truns.nextChild(.trun) {
                let (_, trunFlags) = try trun.fullBoxHeader()
                let count = Int64(try trun.u32("sample_count"))
                if trunFlags & 0x01 != 0 { try trun.skip(4, "data_offset") }
                if trunFlags & 0x04 != 0 { try trun.skip(4, "first_sample_flags") }
                guard trunFlags & 0x100 != 0 else {
                    let (total, overflow) = count.multipliedReportingOverflow(by: Int64(defaultDuration))
                    run.duration = overflow ? nil : sum(run.duration, total)
                    continue
                }
                let perSample = 4 + (trunFlags & 0x200 != 0 ? 4 : 0) + (trunFlags & 0x400 != 0 ? 4 : 0)
                    + (trunFlags & 0x800 != 0 ? 4 : 0)
                guard count <= Int64(trun.remaining / perSample) else {
                    throw trun.error(.truncatedBox, "trun declares \(count) samples but has room for \(trun.remaining / perSample)")
                }
                for _ in 0..<count {
                    run.duration = sum(run.duration, Int64(try trun.u32("sample_duration")))
                    try trun.skip(perSample - 4, "sample fields")
                }
            }
            runs.append(run)
        }
        return (first.start..<(first.reader.end), runs)
    }
}
