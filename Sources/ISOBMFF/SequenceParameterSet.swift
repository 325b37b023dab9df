public import NIOCore

/// The picture size an H.264 or H.265 sequence parameter set declares: what
/// a decoder allocates for each picture, read before anything is decoded.
/// Pure, over untrusted bytes: every exp-Golomb code is bounded, every value
/// range-checked, and a malformed set is a ``ParseError``, never a trap.
public struct SequenceParameterSet: Sendable, Equatable {
    public var codec: VideoDecoderConfiguration.Codec
    /// `seq_parameter_set_id`.
    public var id: Int
    /// The decoded picture in luma samples, before cropping: whole macroblocks
    /// (H.264) or coding blocks (H.265). What a decoder's frames hold.
    public var codedWidth: Int
    public var codedHeight: Int
    /// The picture shown: the coded one less the cropping (H.264) or the
    /// conformance window (H.265).
    public var width: Int
    public var height: Int

    /// Luma samples of a decoded picture, the measure of its memory and time.
    public var codedPixels: Int { codedWidth * codedHeight }

    /// The bytes of an SPS read past this are never needed (the size comes
    /// before the VUI), so a huge NAL unit costs no more than a small one.
    static let maxBytesRead = 4096

    /// Parses one SPS NAL unit, its header included (one byte for H.264, two for H.265).
    public init(parsing unit: ByteBuffer, codec: VideoDecoderConfiguration.Codec) throws(ParseError) {
        var reader = RBSPReader(unit.readableBytesView.prefix(Self.maxBytesRead))
        switch codec {
        case .h264: self = try Self.h264(&reader)
        case .h265: self = try Self.h265(&reader)
        }
    }

    private init(codec: VideoDecoderConfiguration.Codec, id: Int, codedWidth: Int, codedHeight: Int, crop: Crop,
                 unitX: Int, unitY: Int, reader: RBSPReader) throws(ParseError) {
        // Values are below 2^32 each, so these products and sums fit in 64 bits.
        let width = codedWidth - unitX * (crop.left + crop.right)
        let height = codedHeight - unitY * (crop.top + crop.bottom)
        guard width > 0, height > 0 else {
            throw reader.error("the cropping (\(crop.left), \(crop.right), \(crop.top), \(crop.bottom)) leaves nothing of a \(codedWidth)x\(codedHeight) picture")
        }
        self.codec = codec
        self.id = id
        self.codedWidth = codedWidth
        self.codedHeight = codedHeight
        self.width = width
        self.height = height
    }

    private struct Crop {
        var left = 0, right = 0, top = 0, bottom = 0

        static func read(_ reader: inout RBSPReader, _ what: String) throws(ParseError) -> Crop {
            Crop(left: try reader.ue("\(what)_left_offset"), right: try reader.ue("\(what)_right_offset"),
                 top: try reader.ue("\(what)_top_offset"), bottom: try reader.ue("\(what)_bottom_offset"))
        }
    }

    /// H.264 profiles whose SPS carries chroma format, bit depths and scaling lists (7.3.2.1.1).
    private static let highProfiles: Set<Int> = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135, 144]

    /// ITU-T H.264 7.3.2.1.1, up to the cropping.
    private static func h264(_ r: inout RBSPReader) throws(ParseError) -> SequenceParameterSet {
        let header = try r.bits(8, "nal_unit_header")
        guard header & 0x80 == 0, header & 0x1F == 7 else {
            throw r.error("NAL unit type \(header & 0x1F) is not an H.264 SPS (7)")
        }
        let profile = try r.bits(8, "profile_idc")
        _ = try r.bits(16, "constraint_flags/level_idc")
        let id = try r.ue("seq_parameter_set_id", max: 31)
        var chromaFormat = 1
        var separatePlanes = false
        if highProfiles.contains(profile) {
            chromaFormat = try r.ue("chroma_format_idc", max: 3)
            if chromaFormat == 3 { separatePlanes = try r.flag("separate_colour_plane_flag") }
            _ = try r.ue("bit_depth_luma_minus8", max: 6)
            _ = try r.ue("bit_depth_chroma_minus8", max: 6)
            _ = try r.flag("qpprime_y_zero_transform_bypass_flag")
            if try r.flag("seq_scaling_matrix_present_flag") {
                for list in 0..<(chromaFormat == 3 ? 12 : 8) {
                    if try r.flag("seq_scaling_list_present_flag") { try skipScalingList(&r, size: list < 6 ? 16 : 64) }
                }
            }
        }
        _ = try r.ue("log2_max_frame_num_minus4", max: 12)
        switch try r.ue("pic_order_cnt_type", max: 2) {
        case 0:
            _ = try r.ue("log2_max_pic_order_cnt_lsb_minus4", max: 12)
        case 1:
            _ = try r.flag("delta_pic_order_always_zero_flag")
            _ = try r.se("offset_for_non_ref_pic")
            _ = try r.se("offset_for_top_to_bottom_field")
            for _ in 0..<(try r.ue("num_ref_frames_in_pic_order_cnt_cycle", max: 255)) {
                _ = try r.se("offset_for_ref_frame")
            }
        default:
            break
        }
        _ = try r.ue("max_num_ref_frames")
        _ = try r.flag("gaps_in_frame_num_value_allowed_flag")
        let widthInMacroblocks = try r.ue("pic_width_in_mbs_minus1") + 1
        let heightInMapUnits = try r.ue("pic_height_in_map_units_minus1") + 1
        let frameMacroblocksOnly = try r.flag("frame_mbs_only_flag")
        if !frameMacroblocksOnly { _ = try r.flag("mb_adaptive_frame_field_flag") }
        _ = try r.flag("direct_8x8_inference_flag")
        let crop = try r.flag("frame_cropping_flag") ? try Crop.read(&r, "frame_crop") : Crop()
        // Table 6-1 and equations 7-19 to 7-22: the crop unit follows the chroma subsampling.
        let chromaArrayType = separatePlanes ? 0 : chromaFormat
        let subWidth = chromaArrayType == 1 || chromaArrayType == 2 ? 2 : 1
        let subHeight = chromaArrayType == 1 ? 2 : 1
        let fieldFactor = frameMacroblocksOnly ? 1 : 2
        return try SequenceParameterSet(codec: .h264, id: id, codedWidth: widthInMacroblocks * 16,
                                        codedHeight: heightInMapUnits * 16 * fieldFactor, crop: crop,
                                        unitX: subWidth, unitY: subHeight * fieldFactor, reader: r)
    }

    /// A scaling list is read only to be passed: 7.3.2.1.1.1.
    private static func skipScalingList(_ r: inout RBSPReader, size: Int) throws(ParseError) {
        var last = 8, next = 8
        for _ in 0..<size {
            if next != 0 {
                let delta = try r.se("delta_scale")
                guard (-128...127).contains(delta) else { throw r.error("delta_scale \(delta) is outside -128...127") }
                next = (last + delta + 256) % 256
            }
            last = next == 0 ? last : next
        }
    }

    /// ITU-T H.265 7.3.2.2.1, up to the conformance window.
    private static func h265(_ r: inout RBSPReader) throws(ParseError) -> SequenceParameterSet {
        let header = try r.bits(16, "nal_unit_header")
        guard header & 0x8000 == 0, (header >> 9) & 0x3F == 33 else {
            throw r.error("NAL unit type \((header >> 9) & 0x3F) is not an H.265 SPS (33)")
        }
        _ = try r.bits(4, "sps_video_parameter_set_id")
        let subLayers = try r.bits(3, "sps_max_sub_layers_minus1")
        guard subLayers <= 6 else { throw r.error("sps_max_sub_layers_minus1 is \(subLayers), at most 6") }
        _ = try r.flag("sps_temporal_id_nesting_flag")
        // profile_tier_level(1, sps_max_sub_layers_minus1), 7.3.3: fixed-size fields, skipped.
        try r.skip(88 + 8, "general profile, tier and level")
        var profilePresent: [Bool] = [], levelPresent: [Bool] = []
        for _ in 0..<subLayers {
            profilePresent.append(try r.flag("sub_layer_profile_present_flag"))
            levelPresent.append(try r.flag("sub_layer_level_present_flag"))
        }
        if subLayers > 0 { try r.skip(2 * (8 - subLayers), "reserved_zero_2bits") }
        for layer in 0..<subLayers {
            if profilePresent[layer] { try r.skip(88, "sub-layer profile") }
            if levelPresent[layer] { try r.skip(8, "sub_layer_level_idc") }
        }
        let id = try r.ue("sps_seq_parameter_set_id", max: 15)
        let chromaFormat = try r.ue("chroma_format_idc", max: 3)
        let separatePlanes = chromaFormat == 3 ? try r.flag("separate_colour_plane_flag") : false
        let width = try r.ue("pic_width_in_luma_samples")
        let height = try r.ue("pic_height_in_luma_samples")
        guard width > 0, height > 0 else { throw r.error("a picture of \(width)x\(height) luma samples") }
        let window = try r.flag("conformance_window_flag") ? try Crop.read(&r, "conf_win") : Crop()
        let chromaArrayType = separatePlanes ? 0 : chromaFormat
        return try SequenceParameterSet(codec: .h265, id: id, codedWidth: width, codedHeight: height, crop: window,
                                        unitX: chromaArrayType == 1 || chromaArrayType == 2 ? 2 : 1,
                                        unitY: chromaArrayType == 1 ? 2 : 1, reader: r)
    }
}

extension VideoDecoderConfiguration {
    /// Whether a NAL unit (its first header byte) is a sequence parameter set.
    func isSequenceParameterSet(header: UInt8) -> Bool {
        switch codec {
        case .h264: header & 0x1F == 7
        case .h265: (header >> 1) & 0x3F == 33
        }
    }

    /// Every SPS a decoder of `sample` may use, parsed: those of the
    /// configuration (in whichever list they came) and those the sample
    /// carries itself, which replace them in a decoder.
    /// - Throws: when an SPS is malformed or the sample's NAL lengths overrun it.
    public func sequenceParameterSets(decoding sample: ByteBuffer?) throws(ParseError) -> [SequenceParameterSet] {
        var units = parameterSets
        if let sample {
            var index = sample.readerIndex
            let end = sample.writerIndex
            while index < end {
                guard index + nalLengthSize <= end else {
                    throw ParseError(.invalidField, "\(end - index) stray bytes after the last NAL unit",
                                     offset: Int64(index), path: "sample")
                }
                var length = 0
                for i in 0..<nalLengthSize { length = length << 8 | Int(sample.getInteger(at: index + i, as: UInt8.self) ?? 0) }
                index += nalLengthSize
                guard length > 0, length <= end - index, let unit = sample.getSlice(at: index, length: length) else {
                    throw ParseError(.invalidField, "a NAL unit of \(length) bytes overruns its sample (\(end - index) left)",
                                     offset: Int64(index), path: "sample")
                }
                units.append(unit)
                index += length
            }
        }
        var sets: [SequenceParameterSet] = []
        for unit in units {
            guard let header = unit.getInteger(at: unit.readerIndex, as: UInt8.self), isSequenceParameterSet(header: header) else {
                continue
            }
            sets.append(try SequenceParameterSet(parsing: unit, codec: codec))
        }
        return sets
    }
}

/// Reads the bits of a NAL unit's payload, dropping the emulation prevention
/// bytes (a 0x03 after two zero bytes) as it goes. Past the end is an error.
struct RBSPReader {
    private let bytes: [UInt8]
    /// Bit position in `bytes`, the escaped ones removed.
    private var position = 0

    init(_ escaped: some Sequence<UInt8>) {
        var out: [UInt8] = []
        var zeros = 0
        for byte in escaped {
            if zeros >= 2, byte == 3 {
                zeros = 0
                continue
            }
            zeros = byte == 0 ? zeros + 1 : 0
            out.append(byte)
        }
        bytes = out
    }

    func error(_ message: String) -> ParseError {
        ParseError(.invalidField, message, offset: Int64(position / 8), path: "sps")
    }

    mutating func bit(_ field: String) throws(ParseError) -> Int {
        guard position < bytes.count * 8 else {
            throw ParseError(.truncatedBox, "the SPS ends before \(field)", offset: Int64(bytes.count), path: "sps")
        }
        defer { position += 1 }
        return Int(bytes[position >> 3] >> (7 - UInt8(position & 7))) & 1
    }

    mutating func flag(_ field: String) throws(ParseError) -> Bool { try bit(field) == 1 }

    /// `count` bits, at most 32, most significant first.
    mutating func bits(_ count: Int, _ field: String) throws(ParseError) -> Int {
        var value = 0
        for _ in 0..<min(count, 32) { value = value << 1 | (try bit(field)) }
        return value
    }

    mutating func skip(_ count: Int, _ field: String) throws(ParseError) {
        guard count <= bytes.count * 8 - position else {
            throw ParseError(.truncatedBox, "the SPS ends inside \(field)", offset: Int64(bytes.count), path: "sps")
        }
        position += count
    }

    /// An unsigned exp-Golomb code: at most 31 leading zeros, so at most 2^32 - 2.
    mutating func ue(_ field: String, max: Int = 0xFFFF_FFFE) throws(ParseError) -> Int {
        var zeros = 0
        while try bit(field) == 0 {
            zeros += 1
            guard zeros <= 31 else { throw error("\(field) has an exp-Golomb code longer than 32 bits") }
        }
        let value = (1 << zeros) - 1 + (try bits(zeros, field))
        guard value <= max else { throw error("\(field) is \(value), at most \(max)") }
        return value
    }

    /// A signed exp-Golomb code.
    mutating func se(_ field: String) throws(ParseError) -> Int {
        let code = try ue(field)
        return code & 1 == 1 ? (code + 1) / 2 : -(code / 2)
    }
}
