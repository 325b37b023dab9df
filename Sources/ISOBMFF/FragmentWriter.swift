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
