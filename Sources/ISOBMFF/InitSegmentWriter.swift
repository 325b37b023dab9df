public import NIOCore

/// A track of an init segment to write: what a decoder needs before the
/// first fragment.
public struct WritableTrack: Sendable {
    public enum Media: Sendable {
        /// H.264 (`avc1` + `avcC`) or H.265 (`hev1` + `hvcC`); parameter
        /// sets are NAL units with their headers, without start codes.
        case video(codec: VideoDecoderConfiguration.Codec, vps: [ByteBuffer], sps: [ByteBuffer], pps: [ByteBuffer],
                   width: Int, height: Int)
        /// AAC (`mp4a` + `esds`) from its AudioSpecificConfig.
        case aac(audioSpecificConfig: [UInt8], sampleRate: Int, channels: Int)
    }

    public var id: UInt32
    public var timescale: UInt32
    public var media: Media

    public init(id: UInt32, timescale: UInt32, media: Media) {
        self.id = id
        self.timescale = timescale
        self.media = media
    }
}

/// Why an init segment cannot be written.
public enum InitSegmentWriterError: Error, Sendable, Equatable, CustomStringConvertible {
    case noTracks
    case missingParameterSets(String)
    case parameterSetTooLarge(Int)
    case tooManyParameterSets(Int)
    case invalidAudioConfig(String)
    case invalidTrack(String)

    public var description: String {
        switch self {
        case .noTracks: "an init segment needs at least one track"
        case .missingParameterSets(let which): "no \(which) for the video track"
        case .parameterSetTooLarge(let size): "a parameter set of \(size) bytes (at most 65535)"
        case .tooManyParameterSets(let count): "\(count) parameter sets of one kind (at most 31)"
        case .invalidAudioConfig(let why): "AudioSpecificConfig: \(why)"
        case .invalidTrack(let why): why
        }
    }
}

/// Writes the init segment of a fragmented MP4 (`ftyp` + `moov` with empty
/// sample tables and `mvex`), the counterpart of ``FragmentWriter``: how a
/// stream that arrives as elementary frames (RTP) becomes the same fMP4
/// bytes a camera's WebSocket gives, so `mp4-parse` and everything after it
/// take it unchanged. The output reads back through ``StreamingParser``.
public enum InitSegmentWriter {
    /// The init segment for `tracks` (in that order). Samples are expected
    /// with 4-byte NAL length prefixes.
    public static func initSegment(tracks: [WritableTrack]) throws(InitSegmentWriterError) -> ByteBuffer {
        guard !tracks.isEmpty else { throw .noTracks }
        var entries: [ByteBuffer] = []
        for track in tracks {
            guard track.id > 0, track.timescale > 0 else { throw .invalidTrack("track \(track.id): id and timescale must be above 0") }
            entries.append(try sampleEntry(track.media))
        }
        var out = ByteBuffer()
        box(&out, "ftyp") { b in
            b.writeString("isom")
            b.writeInteger(UInt32(0x200))
            for brand in ["isom", "iso6", "mp41", "avc1"] { b.writeString(brand) }
        }
        box(&out, "moov") { moov in
            fullBox(&moov, "mvhd") { b in
                b.writeInteger(UInt32(0)) // creation
                b.writeInteger(UInt32(0)) // modification
                b.writeInteger(UInt32(1000))
                b.writeInteger(UInt32(0)) // duration: fragmented
                b.writeInteger(UInt32(0x0001_0000)) // rate 1.0
                b.writeInteger(UInt16(0x0100)) // volume 1.0
                b.writeRepeatingByte(0, count: 10)
                writeMatrix(&b)
                b.writeRepeatingByte(0, count: 24)
                b.writeInteger((tracks.map(\.id).max() ?? 0) &+ 1)
            }
            for (track, entry) in zip(tracks, entries) { trak(&moov, track, entry: entry) }
            box(&moov, "mvex") { mvex in
                for track in tracks {
                    fullBox(&mvex, "trex") { b in
                        b.writeInteger(track.id)
                        b.writeInteger(UInt32(1)) // sample description index
                        b.writeInteger(UInt32(0))
                        b.writeInteger(UInt32(0))
                        b.writeInteger(UInt32(0))
                    }
                }
            }
        }
        return out
    }

    private static func trak(_ out: inout ByteBuffer, _ track: WritableTrack, entry: ByteBuffer) {
        var isVideo = false
        var width = 0, height = 0
        if case .video(_, _, _, _, let w, let h) = track.media { isVideo = true; width = w; height = h }
        box(&out, "trak") { trak in
            fullBox(&trak, "tkhd", flags: 3) { b in // enabled, in movie
                b.writeInteger(UInt32(0))
                b.writeInteger(UInt32(0))
                b.writeInteger(track.id)
                b.writeInteger(UInt32(0))
                b.writeInteger(UInt32(0)) // duration
                b.writeRepeatingByte(0, count: 8)
                b.writeInteger(UInt16(0)) // layer
                b.writeInteger(UInt16(0)) // alternate group
                b.writeInteger(UInt16(isVideo ? 0 : 0x0100))
                b.writeInteger(UInt16(0))
                writeMatrix(&b)
                b.writeInteger(UInt32(clamping: width) << 16)
                b.writeInteger(UInt32(clamping: height) << 16)
            }
            box(&trak, "mdia") { mdia in
                fullBox(&mdia, "mdhd") { b in
                    b.writeInteger(UInt32(0))
                    b.writeInteger(UInt32(0))
                    b.writeInteger(track.timescale)
                    b.writeInteger(UInt32(0))
                    b.writeInteger(UInt16(0x55C4)) // "und"
                    b.writeInteger(UInt16(0))
                }
                fullBox(&mdia, "hdlr") { b in
                    b.writeInteger(UInt32(0))
                    b.writeString(isVideo ? "vide" : "soun")
                    b.writeRepeatingByte(0, count: 12)
                    b.writeString(isVideo ? "VideoHandler" : "SoundHandler")
                    b.writeInteger(UInt8(0))
                }
                box(&mdia, "minf") { minf in
                    if isVideo {
                        fullBox(&minf, "vmhd", flags: 1) { $0.writeRepeatingByte(0, count: 8) }
                    } else {
                        fullBox(&minf, "smhd") { $0.writeInteger(UInt32(0)) }
                    }
                    box(&minf, "dinf") { dinf in
                        fullBox(&dinf, "dref") { b in
                            b.writeInteger(UInt32(1))
                            fullBox(&b, "url ", flags: 1) { _ in } // media in this file
                        }
                    }
                    box(&minf, "stbl") { stbl in
                        fullBox(&stbl, "stsd") { b in
                            b.writeInteger(UInt32(1))
                            b.writeImmutableBuffer(entry)
                        }
                        fullBox(&stbl, "stts") { $0.writeInteger(UInt32(0)) }
                        fullBox(&stbl, "stsc") { $0.writeInteger(UInt32(0)) }
                        fullBox(&stbl, "stsz") { $0.writeInteger(UInt64(0)) }
                        fullBox(&stbl, "stco") { $0.writeInteger(UInt32(0)) }
                    }
                }
            }
        }
    }

    private static func sampleEntry(_ media: WritableTrack.Media) throws(InitSegmentWriterError) -> ByteBuffer {
        var out = ByteBuffer()
        switch media {
        case .video(let codec, let vps, let sps, let pps, let width, let height):
            guard !sps.isEmpty else { throw .missingParameterSets("SPS") }
            guard !pps.isEmpty else { throw .missingParameterSets("PPS") }
            guard (1...65535).contains(width), (1...65535).contains(height) else {
                throw .invalidTrack("video size \(width)x\(height) out of range")
            }
            for set in [vps, sps, pps] {
                guard set.count <= 31 else { throw .tooManyParameterSets(set.count) }
                for unit in set where unit.readableBytes > 65535 || unit.readableBytes < 2 {
                    throw .parameterSetTooLarge(unit.readableBytes)
                }
            }
            let configuration: ByteBuffer
            switch codec {
            case .h264:
                guard sps[0].readableBytes >= 4 else { throw .missingParameterSets("valid SPS") }
                configuration = avcC(sps: sps, pps: pps)
            case .h265:
                guard !vps.isEmpty else { throw .missingParameterSets("VPS") }
                configuration = hvcC(vps: vps, sps: sps, pps: pps)
            }
            // hev1: parameter sets may come in band too, as they do from RTP cameras.
            box(&out, codec == .h264 ? "avc1" : "hev1") { b in
                b.writeRepeatingByte(0, count: 6)
                b.writeInteger(UInt16(1)) // data reference index
                b.writeRepeatingByte(0, count: 16)
                b.writeInteger(UInt16(width))
                b.writeInteger(UInt16(height))
                b.writeInteger(UInt32(0x0048_0000)) // 72 dpi
                b.writeInteger(UInt32(0x0048_0000))
                b.writeInteger(UInt32(0))
                b.writeInteger(UInt16(1)) // frame count
                b.writeRepeatingByte(0, count: 32) // compressor name
                b.writeInteger(UInt16(0x0018))
                b.writeInteger(Int16(-1))
                b.writeImmutableBuffer(configuration)
            }
        case .aac(let config, let sampleRate, let channels):
            guard (2...64).contains(config.count) else { throw .invalidAudioConfig("\(config.count) bytes (2 to 64)") }
            guard sampleRate > 0, (1...8).contains(channels) else {
                throw .invalidAudioConfig("rate \(sampleRate), \(channels) channels")
            }
            box(&out, "mp4a") { b in
                b.writeRepeatingByte(0, count: 6)
                b.writeInteger(UInt16(1))
                b.writeRepeatingByte(0, count: 8)
                b.writeInteger(UInt16(channels))
                b.writeInteger(UInt16(16))
                b.writeInteger(UInt32(0))
                // 16.16 fixed point; a rate above 65535 lives in mdhd's timescale only.
                b.writeInteger(sampleRate <= 65535 ? UInt32(sampleRate) << 16 : 0)
                fullBox(&b, "esds") { esds in
                    let specific = 2 + config.count
                    let decoderConfig = 2 + 13 + specific
                    esds.writeBytes([0x03, UInt8(3 + decoderConfig + 3), 0x00, 0x00, 0x00])
                    esds.writeBytes([0x04, UInt8(13 + specific), 0x40, 0x15, 0, 0, 0])
                    esds.writeInteger(UInt32(0)) // max bitrate
                    esds.writeInteger(UInt32(0)) // average bitrate
                    esds.writeBytes([0x05, UInt8(config.count)])
                    esds.writeBytes(config)
                    esds.writeBytes([0x06, 0x01, 0x02])
                }
            }
        }
        return out
    }

    private static func avcC(sps: [ByteBuffer], pps: [ByteBuffer]) -> ByteBuffer {
        var out = ByteBuffer()
        let first = sps[0]
        box(&out, "avcC") { b in
            b.writeInteger(UInt8(1))
            b.writeInteger(first.getInteger(at: first.readerIndex + 1, as: UInt8.self) ?? 0) // profile
            b.writeInteger(first.getInteger(at: first.readerIndex + 2, as: UInt8.self) ?? 0) // compatibility
            b.writeInteger(first.getInteger(at: first.readerIndex + 3, as: UInt8.self) ?? 0) // level
            b.writeInteger(UInt8(0xFF)) // 4-byte NAL lengths
            b.writeInteger(UInt8(0xE0 | sps.count))
            for unit in sps { writeUnit(&b, unit) }
            b.writeInteger(UInt8(pps.count))
            for unit in pps { writeUnit(&b, unit) }
        }
        return out
    }

    private static func hvcC(vps: [ByteBuffer], sps: [ByteBuffer], pps: [ByteBuffer]) -> ByteBuffer {
        // general_profile_space .. general_level_idc: 12 bytes of the SPS's
        // profile_tier_level, after its 2-byte NAL header and 1 byte of ids.
        var profile = [UInt8](repeating: 0, count: 12)
        let rbsp = unescaped(sps[0], limit: 2 + 1 + 12)
        if rbsp.count >= 15 { profile = Array(rbsp[3..<15]) }
        var out = ByteBuffer()
        box(&out, "hvcC") { b in
            b.writeInteger(UInt8(1))
            b.writeBytes(profile)
            b.writeInteger(UInt16(0xF000)) // min_spatial_segmentation_idc 0
            b.writeInteger(UInt8(0xFC)) // parallelism unknown
            b.writeInteger(UInt8(0xFD)) // chroma 4:2:0
            b.writeInteger(UInt8(0xF8)) // 8-bit luma
            b.writeInteger(UInt8(0xF8)) // 8-bit chroma
            b.writeInteger(UInt16(0)) // average frame rate unknown
            b.writeInteger(UInt8(0x0F)) // one temporal layer, nested, 4-byte NAL lengths
            b.writeInteger(UInt8(3))
            for (type, units) in [(UInt8(32), vps), (33, sps), (34, pps)] {
                b.writeInteger(type) // not complete: more may come in band
                b.writeInteger(UInt16(units.count))
                for unit in units { writeUnit(&b, unit) }
            }
        }
        return out
    }

    /// The first `limit` bytes of a NAL unit with emulation prevention removed.
    static func unescaped(_ unit: ByteBuffer, limit: Int) -> [UInt8] {
        var out: [UInt8] = []
        var zeros = 0
        for byte in unit.readableBytesView {
            if out.count >= limit { break }
            if zeros >= 2, byte == 3 { zeros = 0; continue }
            zeros = byte == 0 ? zeros + 1 : 0
            out.append(byte)
        }
        return out
    }

    private static func writeUnit(_ b: inout ByteBuffer, _ unit: ByteBuffer) {
        b.writeInteger(UInt16(unit.readableBytes))
        b.writeImmutableBuffer(unit)
    }

    private static func writeMatrix(_ b: inout ByteBuffer) {
        for value: UInt32 in [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] { b.writeInteger(value) }
    }

    private static func box(_ out: inout ByteBuffer, _ type: String, _ body: (inout ByteBuffer) -> Void) {
        let start = out.writerIndex
        out.writeInteger(UInt32(0))
        out.writeString(type)
        body(&out)
        out.setInteger(UInt32(out.writerIndex - start), at: start)
    }

    private static func fullBox(_ out: inout ByteBuffer, _ type: String, version: UInt8 = 0, flags: UInt32 = 0,
                                _ body: (inout ByteBuffer) -> Void) {
        box(&out, type) { b in
            b.writeInteger(UInt32(version) << 24 | flags & 0xFF_FFFF)
            body(&b)
        }
    }
}
