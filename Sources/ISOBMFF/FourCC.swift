/// A four-character code: a box type such as `moov`, a handler such as `vide`.
public struct FourCC: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// From four ASCII characters; shorter text is padded with spaces.
    public init(stringLiteral value: String) {
        var raw: UInt32 = 0
        var bytes = Array(value.utf8.prefix(4))
        while bytes.count < 4 { bytes.append(0x20) }
        for byte in bytes { raw = raw << 8 | UInt32(byte) }
        rawValue = raw
    }

    /// The four characters; bytes outside printable ASCII as `\xNN`.
    public var description: String {
        var text = ""
        for shift in stride(from: 24, through: 0, by: -8) {
            let byte = UInt8(truncatingIfNeeded: rawValue >> UInt32(shift))
            if byte >= 0x20 && byte < 0x7f {
                text.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                text += "\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16)
            }
        }
        return text
    }

    /// Whether all four bytes are printable ASCII, as every registered box
    /// type is: the cheap test for "this looks like a box header".
    public var isPrintable: Bool {
        (0..<4).allSatisfy { i in
            let byte = UInt8(truncatingIfNeeded: rawValue >> UInt32(24 - 8 * i))
            return byte >= 0x20 && byte < 0x7f
        }
    }

    public static let ftyp: FourCC = "ftyp"
    public static let styp: FourCC = "styp"
    public static let moov: FourCC = "moov"
    public static let mvhd: FourCC = "mvhd"
    public static let trak: FourCC = "trak"
    public static let tkhd: FourCC = "tkhd"
    public static let mdia: FourCC = "mdia"
    public static let mdhd: FourCC = "mdhd"
    public static let hdlr: FourCC = "hdlr"
    public static let minf: FourCC = "minf"
    public static let stbl: FourCC = "stbl"
    public static let stsd: FourCC = "stsd"
    public static let mvex: FourCC = "mvex"
    public static let trex: FourCC = "trex"
    public static let moof: FourCC = "moof"
    public static let mfhd: FourCC = "mfhd"
    public static let traf: FourCC = "traf"
    public static let tfhd: FourCC = "tfhd"
    public static let tfdt: FourCC = "tfdt"
    public static let trun: FourCC = "trun"
    public static let mdat: FourCC = "mdat"
    public static let sidx: FourCC = "sidx"
    public static let free: FourCC = "free"
    public static let skip: FourCC = "skip"
    public static let avc1: FourCC = "avc1"
    public static let avc3: FourCC = "avc3"
    public static let hev1: FourCC = "hev1"
    public static let hvc1: FourCC = "hvc1"
    public static let avcC: FourCC = "avcC"
    public static let hvcC: FourCC = "hvcC"
    public static let mp4a: FourCC = "mp4a"
    public static let esds: FourCC = "esds"
    public static let vide: FourCC = "vide"
    public static let soun: FourCC = "soun"
}
