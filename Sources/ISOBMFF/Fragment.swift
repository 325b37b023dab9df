public import NIOCore

/// One sample (access unit) of a fragment.
public struct Sample: Sendable, Equatable {
    public var track: UInt32
    /// Decode time in the track's timescale.
    public var dts: Int64
    /// Presentation time: dts + composition offset.
    public var pts: Int64
    public var duration: UInt32
    public var size: UInt32
    /// Start of the sample's bytes within ``Fragment/bytes``.
    public var offset: Int
    /// The ISO sample flags.
    public var flags: UInt32

    /// `sample_is_non_sync_sample` is clear: decoding can start here.
    public var isSync: Bool { flags & 0x0001_0000 == 0 }
}

/// A movie fragment: `moof` + `mdat` bytes and the samples they hold.
public struct Fragment: Sendable {
    /// moof + mdat, a slice of the input where they arrived together.
    public var bytes: ByteBuffer
    /// `mfhd` sequence number.
    public var sequenceNumber: UInt32
    /// Samples of every track, in the order the truns list them.
    public var samples: [Sample]
    /// Stream offset of the moof's first byte.
    public var streamOffset: Int64

    /// The bytes of `sample` (a slice, not a copy).
    public func data(of sample: Sample) -> ByteBuffer {
        bytes.getSlice(at: bytes.readerIndex + sample.offset, length: Int(sample.size)) ?? ByteBuffer()
    }

    /// Parses a moof whose content is `moof`, the box starting at buffer
    /// index `moofStart`, with the mdat payload at `mdatPayload` (buffer indices).
    /// `nextDTS` carries each track's decode time across fragments without `tfdt`.
    /// Every value read is checked before it is used: offsets must fall
    /// inside the fragment, times must not overflow, and all truns together
    /// may declare at most `maxSamples` samples (and no more than the mdat has
    /// bytes), so a small hostile moof cannot make the parser allocate much.
    static func parse(
        moof: BoxReader, moofStart: Int, mdatPayload: Range<Int>, bytes: ByteBuffer, initSegment: InitSegment,
        maxSamples: Int, nextDTS: inout [UInt32: Int64]
    ) throws(ParseError) -> Fragment {
        var sequenceNumber: UInt32 = 0
        if var mfhd = try moof.child(.mfhd) {
            _ = try mfhd.fullBoxHeader()
            sequenceNumber = try mfhd.u32("sequence_number")
        }
        var samples: [Sample] = []
        // Where the previous traf's data ended: the default base of the next one.
        var previousTrafEnd = moofStart
        var isFirstTraf = true
        var trafs = moof
        while let traf = try trafs.nextChild(.traf) {
            var tfhd = try traf.required(.tfhd)
            let (_, tfhdFlags) = try tfhd.fullBoxHeader()
            let trackID = try tfhd.u32("track_ID")
            guard let track = initSegment.track(trackID) else {
                throw tfhd.error(.unknownTrack, "track fragment for track \(trackID), which the init segment does not have")
            }
            var defaults = track.defaults
            var base: Int
            if tfhdFlags & 0x01 != 0 {
                let absolute = Int64(bitPattern: try tfhd.u64("base_data_offset"))
                let (relative, overflow) = absolute.subtractingReportingOverflow(moof.streamOffset)
                guard !overflow, relative >= Int64(moofStart), relative <= Int64(mdatPayload.upperBound) else {
                    throw tfhd.error(.sampleOutsideMdat,
                                     "base_data_offset \(absolute) of track \(trackID) lies outside its fragment")
                }
                base = Int(relative)
            } else if tfhdFlags & 0x2_0000 != 0 || isFirstTraf {
                base = moofStart
            } else {
                base = previousTrafEnd
            }
            if tfhdFlags & 0x02 != 0 { defaults.descriptionIndex = try tfhd.u32("sample_description_index") }
            if tfhdFlags & 0x08 != 0 { defaults.duration = try tfhd.u32("default_sample_duration") }
            if tfhdFlags & 0x10 != 0 { defaults.size = try tfhd.u32("default_sample_size") }
            if tfhdFlags & 0x20 != 0 { defaults.flags = try tfhd.u32("default_sample_flags") }
            isFirstTraf = false

            // Every consumer may turn a time into 64-bit nanoseconds or subtract two of them: larger ones are refused here.
            let maxTicks = Self.maxTicks(timescale: track.timescale)
            var dts = nextDTS[trackID] ?? 0
            if var tfdt = try traf.child(.tfdt) {
                let (version, _) = try tfdt.fullBoxHeader()
                dts = version == 1 ? Int64(bitPattern: try tfdt.u64("baseMediaDecodeTime"))
                                   : Int64(try tfdt.u32("baseMediaDecodeTime"))
                guard dts.magnitude <= maxTicks.magnitude else {
                    throw tfdt.error(.invalidField,
                                     "baseMediaDecodeTime \(dts) of track \(trackID) is beyond \(maxTicks) ticks, "
                                        + "the most 64-bit nanoseconds hold at timescale \(track.timescale)")
                }
            }
            // Samples with no bytes need no room in the mdat, so the mdat's size alone does not bound them.
            let sampleLimit = min(maxSamples, max(mdatPayload.count, 1))
            var dataCursor = base
            var truns = traf
            while var trun = try truns.nextChild(.trun) {
                let (version, flags) = try trun.fullBoxHeader()
                let count = Int(try trun.u32("sample_count"))
                // base lies inside the fragment and the offset is 32-bit: no overflow.
                if flags & 0x01 != 0 { dataCursor = base + Int(Int32(bitPattern: try trun.u32("data_offset"))) }
                var firstFlags: UInt32?
                if flags & 0x04 != 0 { firstFlags = try trun.u32("first_sample_flags") }
                let perSample = (flags & 0x100 != 0 ? 4 : 0) + (flags & 0x200 != 0 ? 4 : 0)
                    + (flags & 0x400 != 0 ? 4 : 0) + (flags & 0x800 != 0 ? 4 : 0)
                // Bound the work by what the boxes can hold before allocating.
                let limit = perSample > 0 ? trun.remaining / perSample : max(mdatPayload.count, 1)
                guard count <= limit else {
                    throw trun.error(.truncatedBox, "trun declares \(count) samples but has room for \(limit)")
                }
                guard count <= sampleLimit - samples.count else {
                    throw trun.error(.invalidField,
                                     "the fragment's truns declare more than \(sampleLimit) samples "
                                        + "(\(samples.count) before this one, which adds \(count))")
                }
                samples.reserveCapacity(samples.count + count)
                for index in 0..<count {
                    let duration = flags & 0x100 != 0 ? try trun.u32("sample_duration") : defaults.duration
                    let size = flags & 0x200 != 0 ? try trun.u32("sample_size") : defaults.size
                    var sampleFlags = flags & 0x400 != 0 ? try trun.u32("sample_flags") : defaults.flags
                    if index == 0, let firstFlags { sampleFlags = firstFlags }
                    var offset: Int64 = 0
                    if flags & 0x800 != 0 {
                        let raw = try trun.u32("sample_composition_time_offset")
                        offset = version == 0 ? Int64(raw) : Int64(Int32(bitPattern: raw))
                    }
                    let start = dataCursor
                    // dataCursor stays within 2^31 of the fragment and size is 32-bit: no overflow.
                    let end = start + Int(size)
                    guard start >= mdatPayload.lowerBound, end <= mdatPayload.upperBound else {
                        throw trun.error(
                            .sampleOutsideMdat,
                            "sample \(index) of track \(trackID) lies at bytes \(start - moofStart)..<\(end - moofStart) of the fragment, "
                                + "outside its mdat (\(mdatPayload.lowerBound - moofStart)..<\(mdatPayload.upperBound - moofStart))")
                    }
                    let (pts, ptsOverflow) = dts.addingReportingOverflow(offset)
                    let (nextDecodeTime, dtsOverflow) = dts.addingReportingOverflow(Int64(duration))
                    guard !ptsOverflow, !dtsOverflow, pts.magnitude <= maxTicks.magnitude,
                          nextDecodeTime.magnitude <= maxTicks.magnitude else {
                        throw trun.error(.invalidField,
                                         "sample \(index) of track \(trackID): decode time \(dts) (presentation \(dts) + \(offset)) "
                                            + "overflows \(maxTicks) ticks, the most 64-bit nanoseconds hold at timescale \(track.timescale)")
                    }
                    samples.append(Sample(track: trackID, dts: dts, pts: pts, duration: duration, size: size,
                                          offset: start - moofStart, flags: sampleFlags))
                    dts = nextDecodeTime
                    dataCursor = end
                }
            }
            previousTrafEnd = dataCursor
            nextDTS[trackID] = dts
        }
        return Fragment(bytes: bytes, sequenceNumber: sequenceNumber, samples: samples,
                        streamOffset: moof.streamOffset + Int64(moofStart))
    }

    /// The largest decode or presentation time, in ticks of `timescale`,
    /// whose magnitude in nanoseconds fits an `Int64`: the parser hands out
    /// no time beyond it, so a consumer may convert, negate or subtract
    /// times without trapping.
    public static func maxTicks(timescale: UInt32) -> Int64 {
        let (ticks, overflow) = (Int64.max / 1_000_000_000).multipliedReportingOverflow(by: Int64(max(timescale, 1)))
        return overflow ? .max : ticks
    }
}

extension Fragment {
    /// A copy of the fragment's bytes with every `tfdt` moved by
    /// `shift(trackID)` ticks and the `mfhd` sequence number moved by
    /// `sequenceShift`: how a looped file keeps continuous timestamps.
    public func rewritingTimes(sequenceShift: UInt32, shift: (UInt32) -> Int64) -> ByteBuffer {
        var out = ByteBuffer()
        out.writeImmutableBuffer(bytes)
        let base = out.readerIndex
        func boxes(in range: Range<Int>, _ visit: (String, Range<Int>) -> Void) {
            var index = range.lowerBound
            while index + 8 <= range.upperBound {
                guard let size = out.getInteger(at: index, as: UInt32.self),
                      let type = out.getBytes(at: index + 4, length: 4),
                      size >= 8, index + Int(size) <= range.upperBound else { return }
                visit(String(decoding: type, as: UTF8.self), (index + 8)..<(index + Int(size)))
                index += Int(size)
            }
        }
        guard let moofSize = out.getInteger(at: base, as: UInt32.self) else { return out }
        boxes(in: (base + 8)..<(base + Int(moofSize))) { type, content in
            if type == "mfhd", let sequence = out.getInteger(at: content.lowerBound + 4, as: UInt32.self) {
                out.setInteger(sequence &+ sequenceShift, at: content.lowerBound + 4)
            }
            guard type == "traf" else { return }
            var trackID: UInt32 = 0
            boxes(in: content) { child, body in
                if child == "tfhd" { trackID = out.getInteger(at: body.lowerBound + 4, as: UInt32.self) ?? 0 }
            }
            boxes(in: content) { child, body in
                guard child == "tfdt", let version = out.getInteger(at: body.lowerBound, as: UInt8.self) else { return }
                let at = body.lowerBound + 4
                if version == 1, let time = out.getInteger(at: at, as: UInt64.self) {
                    out.setInteger(UInt64(bitPattern: Int64(bitPattern: time) &+ shift(trackID)), at: at)
                } else if let time = out.getInteger(at: at, as: UInt32.self) {
                    out.setInteger(UInt32(truncatingIfNeeded: Int64(time) &+ shift(trackID)), at: at)
                }
            }
        }
        return out
    }
}
