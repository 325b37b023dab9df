public import NIOCore

/// A sample to write into a new fragment: its timing and flags, and its
/// bytes (a slice of the fragment it came from, not a copy).
public struct WritableSample: Sendable {
    public var track: UInt32
    public var dts: Int64
    public var pts: Int64
    public var duration: UInt32
    public var flags: UInt32
    public var data: ByteBuffer

    public init(track: UInt32, dts: Int64, pts: Int64, duration: UInt32, flags: UInt32, data: ByteBuffer) {
        self.track = track
        self.dts = dts
        self.pts = pts
        self.duration = duration
        self.flags = flags
        self.data = data
    }

    /// `sample` of `fragment`, its bytes sliced from the fragment's.
    public init(_ sample: Sample, of fragment: Fragment) {
        self.init(track: sample.track, dts: sample.dts, pts: sample.pts, duration: sample.duration,
                  flags: sample.flags, data: fragment.data(of: sample))
    }

    /// Decoding can start here.
    public var isSync: Bool { flags & 0x0001_0000 == 0 }
}

/// Writes movie fragments (`moof` + `mdat`) from samples: how camflow cuts
/// a camera's fragments into the smaller parts of LL-HLS, and trims
/// recordings to a time range, without re-encoding anything.
///
/// Each track gets one `traf` with `default-base-is-moof`, a version 1
/// `tfdt` (64-bit decode time) and a version 1 `trun` that lists every
/// sample's duration, size, flags and signed composition offset, so the
/// result needs nothing from `trex` defaults.
public enum FragmentWriter {
    /// The fragment holding `samples` (in decode order per track; tracks in
    /// order of first appearance), numbered `sequenceNumber`.
    ///
    /// A fragment of 2 GiB or more, or a composition offset beyond 32 bits,
    /// cannot be written in a `trun`; such samples are refused with nil.
    public static func fragment(sequenceNumber: UInt32, samples: [WritableSample]) -> ByteBuffer? {
        var tracks: [UInt32] = []
        for sample in samples where !tracks.contains(sample.track) { tracks.append(sample.track) }
        var dataBytes = 0
        for sample in samples {
            let (offset, overflow) = sample.pts.subtractingReportingOverflow(sample.dts)
            guard !overflow, Int32(exactly: offset) != nil else { return nil }
            dataBytes += sample.data.readableBytes
        }
        let trafHeaders = 16 + 20 + 20 // tfhd, tfdt (v1) and trun's fixed part
        let moofSize = 8 + 16 + tracks.count * (8 + trafHeaders) + samples.count * 16
        let mdatHeader = 8
        // Offsets into the fragment are 32-bit signed in a trun.
        guard moofSize + mdatHeader + dataBytes <= Int(Int32.max) else { return nil }
        var out = ByteBufferAllocator().buffer(capacity: moofSize + mdatHeader + dataBytes)
        out.writeInteger(UInt32(moofSize))
        out.writeString("moof")
        out.writeInteger(UInt32(16))
        out.writeString("mfhd")
        out.writeInteger(UInt32(0))
        out.writeInteger(sequenceNumber)
        var dataOffset = moofSize + mdatHeader
        for track in tracks {
            let own = samples.filter { $0.track == track }
            out.writeInteger(UInt32(8 + trafHeaders + own.count * 16))
            out.writeString("traf")
            out.writeInteger(UInt32(16))
            out.writeString("tfhd")
            out.writeInteger(UInt32(0x02_0000)) // version 0, default-base-is-moof
            out.writeInteger(track)
            out.writeInteger(UInt32(20))
            out.writeString("tfdt")
            out.writeInteger(UInt32(0x0100_0000)) // version 1
            out.writeInteger(UInt64(bitPattern: own[0].dts))
            out.writeInteger(UInt32(20 + own.count * 16))
            out.writeString("trun")
            // Version 1 (signed composition offsets); data offset, duration, size, flags and offset present.
            out.writeInteger(UInt32(0x0100_0F01))
            out.writeInteger(UInt32(own.count))
            out.writeInteger(Int32(dataOffset))
            for sample in own {
                out.writeInteger(sample.duration)
                out.writeInteger(UInt32(sample.data.readableBytes))
                out.writeInteger(sample.flags)
                out.writeInteger(Int32(sample.pts - sample.dts))
                dataOffset += sample.data.readableBytes
            }
        }
        out.writeInteger(UInt32(mdatHeader + dataBytes))
        out.writeString("mdat")
        for track in tracks {
            for sample in samples where sample.track == track {
                out.writeImmutableBuffer(sample.data)
            }
        }
        return out
    }
}

/// The base decode times (`tfdt`) of a fragment's track fragments, read and
/// moved without parsing samples: how a recording starts at time 0 whatever
/// the stream's time was. Sample bytes are never touched: only the boxes up
/// to the last `moof` are copied to be changed; the rest is a slice.
public enum DecodeTimes {
    /// One `traf`'s `tfdt`: its track, its time and where the value lies
    /// (bytes from the fragment's reader index, 4 or 8 bytes wide).
    public struct Entry: Sendable, Equatable {
        public var track: UInt32
        public var time: UInt64
        var position: Int
        var wide: Bool
    }

    /// The `tfdt` of every `traf` in `fragment` (moof + mdat, perhaps with
    /// boxes such as `styp` before), and where the last `moof` ends. Nil when
    /// the boxes do not nest within their sizes or a `traf` has no `tfhd`.
    /// A `traf` without a `tfdt` is left out (its times follow the last).
    public static func read(_ fragment: ByteBuffer) -> (entries: [Entry], headEnd: Int)? {
        var entries: [Entry] = []
        var headEnd = 0
        guard let top = boxes(fragment, 0, fragment.readableBytes, topLevel: true) else { return nil }
        for moof in top where moof.type == "moof" {
            guard let trafs = boxes(fragment, moof.body, moof.end, topLevel: false) else { return nil }
            headEnd = moof.end
            for traf in trafs where traf.type == "traf" {
                guard let children = boxes(fragment, traf.body, traf.end, topLevel: false),
                      let tfhd = children.first(where: { $0.type == "tfhd" }), tfhd.end - tfhd.body >= 8,
                      let track = fragment.getInteger(at: fragment.readerIndex + tfhd.body + 4, as: UInt32.self) else {
                    return nil
                }
                guard let tfdt = children.first(where: { $0.type == "tfdt" }) else { continue }
                guard let version = fragment.getInteger(at: fragment.readerIndex + tfdt.body, as: UInt8.self) else { return nil }
                let wide = version == 1
                guard tfdt.end - tfdt.body >= (wide ? 12 : 8) else { return nil }
                let at = tfdt.body + 4
                let time = wide ? fragment.getInteger(at: fragment.readerIndex + at, as: UInt64.self)
                    : fragment.getInteger(at: fragment.readerIndex + at, as: UInt32.self).map(UInt64.init)
                guard let time else { return nil }
                entries.append(Entry(track: track, time: time, position: at, wide: wide))
            }
        }
        return (entries, headEnd)
    }

    /// `fragment` with every `tfdt` lowered by `offset(track)`, as the pieces
    /// to write in order (the changed head, then the untouched rest). Nil when
    /// the boxes do not read, a track has no offset, or a time would fall
    /// below zero.
    public static func rebased(_ fragment: ByteBuffer, offset: (UInt32) -> UInt64?) -> [ByteBuffer]? {
        guard let (entries, headEnd) = read(fragment) else { return nil }
        guard !entries.isEmpty else { return [fragment] }
        var head = ByteBufferAllocator().buffer(capacity: headEnd)
        var source = fragment
        guard var original = source.readSlice(length: headEnd) else { return nil }
        head.writeBuffer(&original)
        for entry in entries {
            guard let shift = offset(entry.track) else { return nil }
            let (time, below) = entry.time.subtractingReportingOverflow(shift)
            guard !below else { return nil }
            // A 32-bit time lowered stays within 32 bits.
            if entry.wide { head.setInteger(time, at: entry.position) } else { head.setInteger(UInt32(time), at: entry.position) }
        }
        return source.readableBytes > 0 ? [head, source] : [head]
    }

    private struct Box {
        var type: String
        /// Where the box's content starts and where the box ends (bytes from the reader index).
        var body: Int
        var end: Int
    }

    /// The boxes from `start` to `end`; nil when a size does not fit.
    private static func boxes(_ bytes: ByteBuffer, _ start: Int, _ end: Int, topLevel: Bool) -> [Box]? {
        var result: [Box] = []
        var offset = start
        while offset < end {
            let at = bytes.readerIndex + offset
            guard end - offset >= 8, let size32 = bytes.getInteger(at: at, as: UInt32.self),
                  let type = bytes.getString(at: at + 4, length: 4) else { return nil }
            var header = 8
            var size = Int64(size32)
            if size32 == 1 {
                guard end - offset >= 16, let size64 = bytes.getInteger(at: at + 8, as: UInt64.self) else { return nil }
                header = 16
                size = Int64(clamping: size64)
            } else if size32 == 0 {
                // "To the end of the file": only the last top-level box (an mdat) may say so.
                guard topLevel else { return nil }
                size = Int64(end - offset)
            }
            guard size >= Int64(header), size <= Int64(end - offset) else { return nil }
            result.append(Box(type: type, body: offset + header, end: offset + Int(size)))
            offset += Int(size)
        }
        return result
    }
}
