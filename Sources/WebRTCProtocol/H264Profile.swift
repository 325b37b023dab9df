/// H.264's profile and level as `profile-level-id` carries them (RFC 6184
/// §8.1): profile_idc, the constraint flags byte (profile-iop), level_idc.
public struct H264ProfileLevel: Sendable, Equatable, CustomStringConvertible {
    public let profileIDC: UInt8
    public let constraints: UInt8
    public let levelIDC: UInt8

    public init(profileIDC: UInt8, constraints: UInt8, levelIDC: UInt8) {
        self.profileIDC = profileIDC
        self.constraints = constraints
        self.levelIDC = levelIDC
    }

    /// From a sequence parameter set NAL unit (its header byte first, type 7).
    /// - Throws: `.invalidArgument` when it is shorter than 4 bytes or not an SPS.
    public init<Bytes: Collection>(sps: Bytes) throws(WebRTCWireError) where Bytes.Element == UInt8 {
        let bytes = Array(sps.prefix(4))
        guard bytes.count == 4, bytes[0] & 0x1F == 7 else {
            throw WebRTCWireError(.invalidArgument, "not an H.264 sequence parameter set (NAL type 7, 4 bytes or more)")
        }
        self.init(profileIDC: bytes[1], constraints: bytes[2], levelIDC: bytes[3])
    }

    /// From `profile-level-id`'s six hex digits; nil when malformed.
    public init?(profileLevelID text: Substring) {
        guard text.utf8.count == 6, text.utf8.allSatisfy({ $0 < 0x80 && Character(UnicodeScalar($0)).isHexDigit }),
              let value = UInt32(text, radix: 16) else { return nil }
        self.init(profileIDC: UInt8(value >> 16), constraints: UInt8((value >> 8) & 0xFF), levelIDC: UInt8(value & 0xFF))
    }

    /// Six lowercase hex digits.
    public var description: String {
        [profileIDC, constraints, levelIDC].map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// The profile the idc and constraint flags name (the patterns of RFC
    /// 6184 Table 5 / RFC 7742 §6.2, as libwebrtc matches them).
    public var profile: H264Profile {
        // (idc, mask of the flags that matter, their value); reserved low bits must be 0.
        let patterns: [(UInt8, UInt8, UInt8, H264Profile)] = [
            (0x42, 0x4F, 0x40, .constrainedBaseline), (0x4D, 0x8F, 0x80, .constrainedBaseline),
            (0x58, 0xCF, 0xC0, .constrainedBaseline),
            (0x42, 0x4F, 0x00, .baseline), (0x58, 0xCF, 0x80, .baseline),
            (0x4D, 0xAF, 0x00, .main),
            (0x58, 0xCF, 0x00, .extended),
            (0x64, 0xFF, 0x00, .high), (0x64, 0xFF, 0x0C, .constrainedHigh),
        ]
        for (idc, mask, value, profile) in patterns where profileIDC == idc && constraints & mask == value {
            return profile
        }
        return .other
    }
}

/// The H.264 profiles a WebRTC answer tells apart.
public enum H264Profile: Sendable, Equatable {
    case constrainedBaseline, baseline, main, extended, high, constrainedHigh
    /// High 10, 4:2:2, 4:4:4 and anything else.
    case other
}
