public import NIOCore

/// What a video decoder needs before the first frame: parameter sets and the
/// NAL length size, from an `avcC` or `hvcC` box.
public struct VideoDecoderConfiguration: Sendable, Equatable {
    public enum Codec: String, Sendable { case h264, h265 }

    public var codec: Codec
    /// Bytes of each NAL length prefix in samples (1, 2 or 4).
    public var nalLengthSize: Int
    /// H.265 video parameter sets (empty for H.264).
    public var vps: [ByteBuffer]
    public var sps: [ByteBuffer]
    public var pps: [ByteBuffer]
    /// The RFC 6381 codec string parts after the sample entry type:
    /// `4D0033` for H.264, `1.6.L153.B0` for H.265.
    public var codecParameters: String

    /// Parameter sets in decoding order: VPS, SPS, PPS.
    public var parameterSets: [ByteBuffer] { vps + sps + pps }

    /// Parses an `avcC` box's content.
    static func avc(_ box: BoxReader) throws(ParseError) -> VideoDecoderConfiguration {
        var r = box
        let version = try r.u8("configurationVersion")
        guard version == 1 else { throw r.error(.invalidField, "avcC configurationVersion is \(version), expected 1") }
        let profile = try r.u8("AVCProfileIndication")
        let compatibility = try r.u8("profile_compatibility")
        let level = try r.u8("AVCLevelIndication")
        let lengthSize = Int(try r.u8("lengthSizeMinusOne") & 0x3) + 1
        guard lengthSize != 3 else { throw r.error(.invalidField, "avcC NAL length size 3 is not allowed") }
        let spsCount = Int(try r.u8("numOfSequenceParameterSets") & 0x1F)
        var sps: [ByteBuffer] = []
        for _ in 0..<spsCount {
            let length = Int(try r.u16("sequenceParameterSetLength"))
            sps.append(try r.slice(length, "sequence parameter set"))
        }
        let ppsCount = Int(try r.u8("numOfPictureParameterSets"))
        var pps: [ByteBuffer] = []
        for _ in 0..<ppsCount {
            let length = Int(try r.u16("pictureParameterSetLength"))
            pps.append(try r.slice(length, "picture parameter set"))
        }
        return VideoDecoderConfiguration(
            codec: .h264, nalLengthSize: lengthSize, vps: [], sps: sps, pps: pps,
            codecParameters: hex(profile) + hex(compatibility) + hex(level))
    }

    /// Parses an `hvcC` box's content.
    static func hevc(_ box: BoxReader) throws(ParseError) -> VideoDecoderConfiguration {
        var r = box
        let version = try r.u8("configurationVersion")
        guard version == 1 else { throw r.error(.invalidField, "hvcC configurationVersion is \(version), expected 1") }
        let profileByte = try r.u8("general_profile_space/tier/profile")
        let compatibility = try r.u32("general_profile_compatibility_flags")
        var constraints: [UInt8] = []
        for _ in 0..<6 { constraints.append(try r.u8("general_constraint_indicator_flags")) }
        let level = try r.u8("general_level_idc")
        try r.skip(2 + 1 + 1 + 1 + 1 + 2, "hvcC fixed fields")
        let lengthSize = Int(try r.u8("lengthSizeMinusOne") & 0x3) + 1
        let arrays = Int(try r.u8("numOfArrays"))
        var vps: [ByteBuffer] = [], sps: [ByteBuffer] = [], pps: [ByteBuffer] = []
        for _ in 0..<arrays {
            let nalType = try r.u8("NAL_unit_type") & 0x3F
            let count = Int(try r.u16("numNalus"))
            for _ in 0..<count {
                let length = Int(try r.u16("nalUnitLength"))
                let unit = try r.slice(length, "parameter set")
                switch nalType {
                case 32: vps.append(unit)
                case 33: sps.append(unit)
                case 34: pps.append(unit)
                default: break
                }
            }
        }
        // RFC 6381 / ISO 14496-15 annex E: hev1.<space><profile>.<compat reversed>.<tier><level>.<constraints>
        let space = ["", "A", "B", "C"][Int(profileByte >> 6)]
        let tier = profileByte & 0x20 != 0 ? "H" : "L"
        let profile = profileByte & 0x1F
        var reversed: UInt32 = 0
        for bit in 0..<32 where compatibility & (1 << UInt32(bit)) != 0 { reversed |= 1 << UInt32(31 - bit) }
        while constraints.last == 0 { constraints.removeLast() }
        var parts = ["\(space)\(profile)", String(reversed, radix: 16, uppercase: true), "\(tier)\(level)"]
        parts += constraints.map { String($0, radix: 16, uppercase: true) }
        return VideoDecoderConfiguration(
            codec: .h265, nalLengthSize: lengthSize, vps: vps, sps: sps, pps: pps,
            codecParameters: parts.joined(separator: "."))
    }
}

/// `4D`, `0A`: a byte as two uppercase hex digits.
func hex(_ byte: UInt8) -> String {
    let text = String(byte, radix: 16, uppercase: true)
    return byte < 16 ? "0" + text : text
}

/// What an `esds` box says of an MPEG-4 audio stream.
struct AudioDecoderConfiguration: Sendable, Equatable {
    /// Object type indication (0x40 for MPEG-4 audio).
    var objectType: UInt8
    /// MPEG-4 audio object type (2 for AAC-LC); 0 when absent.
    var audioObjectType: Int
    /// The AudioSpecificConfig bytes.
    var specificConfig: ByteBuffer?

    var codecParameters: String {
        audioObjectType > 0 ? "\(hex(objectType).lowercased()).\(audioObjectType)" : hex(objectType).lowercased()
    }

    /// Parses an `esds` box's content (a full box holding an ES_Descriptor).
    static func esds(_ box: BoxReader) throws(ParseError) -> AudioDecoderConfiguration {
        var r = box
        _ = try r.fullBoxHeader()
        var result = AudioDecoderConfiguration(objectType: 0, audioObjectType: 0, specificConfig: nil)
        // Walk descriptors: tag, expandable length, body.
        func descriptor(_ r: inout BoxReader) throws(ParseError) -> (tag: UInt8, length: Int) {
            let tag = try r.u8("descriptor tag")
            var length = 0
            for _ in 0..<4 {
                let byte = try r.u8("descriptor length")
                length = length << 7 | Int(byte & 0x7F)
                if byte & 0x80 == 0 { break }
            }
            return (tag, length)
        }
        let es = try descriptor(&r)
        guard es.tag == 0x03 else { throw r.error(.invalidField, "esds does not start with an ES_Descriptor (tag \(es.tag))") }
        _ = try r.u16("ES_ID")
        let flags = try r.u8("ES flags")
        if flags & 0x80 != 0 { try r.skip(2, "dependsOn_ES_ID") }
        if flags & 0x40 != 0 { try r.skip(Int(try r.u8("URLlength")), "URL") }
        if flags & 0x20 != 0 { try r.skip(2, "OCR_ES_Id") }
        let config = try descriptor(&r)
        guard config.tag == 0x04 else { return result }
        result.objectType = try r.u8("objectTypeIndication")
        try r.skip(12, "DecoderConfigDescriptor fields")
        guard r.remaining >= 2 else { return result }
        let specific = try descriptor(&r)
        guard specific.tag == 0x05, specific.length > 0 else { return result }
        let bytes = try r.slice(min(specific.length, r.remaining), "DecoderSpecificInfo")
        result.specificConfig = bytes
        if let first = bytes.getInteger(at: bytes.readerIndex, as: UInt8.self) {
            var type = Int(first >> 3)
            if type == 31, let second = bytes.getInteger(at: bytes.readerIndex + 1, as: UInt8.self) {
                type = 32 + Int((first & 0x07) << 3 | second >> 5)
            }
            result.audioObjectType = type
        }
        return result
    }
}
