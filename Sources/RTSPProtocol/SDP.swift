import Foundation

/// A session description (RFC 4566) as camflow writes it for DESCRIBE and
/// reads it from cameras and GStreamer: the session's lines and its media.
public struct SessionDescription: Sendable, Equatable {
    public var name: String
    /// `o=`'s address and session id; `c=` is always `IN IP4 0.0.0.0` when written.
    public var originAddress: String
    public var sessionID: UInt64
    /// The session-level `a=control:` (`*` or a URL), if any.
    public var control: String?
    public var media: [SDPMedia]

    public init(name: String = "camflow", originAddress: String = "127.0.0.1", sessionID: UInt64 = 0,
                control: String? = "*", media: [SDPMedia] = []) {
        self.name = name
        self.originAddress = originAddress
        self.sessionID = sessionID
        self.control = control
        self.media = media
    }

    /// The text sent as DESCRIBE's body, CRLF line ends.
    public var text: String {
        var lines = [
            "v=0",
            "o=- \(sessionID) 1 IN IP4 \(RTSPWire.clean(originAddress))",
            "s=\(RTSPWire.clean(name.isEmpty ? " " : name))",
            "c=IN IP4 0.0.0.0",
            "t=0 0",
            "a=range:npt=now-",
        ]
        if let control { lines.append("a=control:\(RTSPWire.clean(control))") }
        for media in media { lines += media.lines }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    /// The bounds the parser holds a description to.
    public static let maxBytes = 65536
    public static let maxMedia = 16
    public static let maxAttributesPerMedia = 64

    /// Reads a description; bounded in size and media count; lines camflow
    /// has no use for are skipped, malformed ones it needs are refused.
    public init(parsing text: String) throws(SDPError) {
        guard text.utf8.count <= Self.maxBytes else { throw .tooLarge(limit: Self.maxBytes) }
        self.init(name: "", originAddress: "", sessionID: 0, control: nil, media: [])
        var sawVersion = false
        var number = 0
        for rawLine in text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            number += 1
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            if line.isEmpty { continue }
            guard line.count >= 2, line.dropFirst().first == "=" else { throw .malformedLine(number, excerpt(line)) }
            let type = line.first!
            let value = String(line.dropFirst(2))
            switch type {
            case "v":
                guard value == "0" else { throw .malformedLine(number, excerpt(line)) }
                sawVersion = true
            case "s" where media.isEmpty: name = value
            case "o" where media.isEmpty:
                let fields = value.split(separator: " ")
                if fields.count >= 6 { originAddress = String(fields[5]); sessionID = UInt64(fields[1]) ?? 0 }
            case "m":
                guard media.count < Self.maxMedia else { throw .tooManyMedia(limit: Self.maxMedia) }
                media.append(try SDPMedia(mediaLine: value, number: number))
            case "a":
                let (name, attribute) = Self.attribute(value)
                if media.isEmpty {
                    if name == "control" {
                        guard let attribute, attribute.isRequestURI else { throw .malformedLine(number, excerpt(line)) }
                        control = attribute
                    }
                } else {
                    try media[media.count - 1].read(attribute: name, value: attribute, number: number)
                }
            default:
                continue
            }
        }
        guard sawVersion else { throw .missingVersion }
    }

    static func attribute(_ value: String) -> (String, String?) {
        guard let colon = value.firstIndex(of: ":") else { return (value.lowercased(), nil) }
        return (value[..<colon].lowercased(), String(value[value.index(after: colon)...]).trimmingSpaces)
    }

    /// The URL a SETUP for `media` goes to: its control if absolute, else
    /// resolved against the session's control (if absolute) or `base`
    /// (Content-Base, Content-Location or the DESCRIBE URL, RFC 2326 C.1.1).
    public func controlURL(for media: SDPMedia, base: String) -> String {
        var base = base
        if let control, control != "*", control.isAbsoluteRTSPURL { base = control }
        guard let own = media.control, own != "*" else { return base }
        if own.isAbsoluteRTSPURL { return own }
        if base.hasSuffix("/") { return base + (own.hasPrefix("/") ? String(own.dropFirst()) : own) }
        return base + (own.hasPrefix("/") ? own : "/" + own)
    }
}

/// One `m=` section: its kind, payload type, `a=rtpmap`, `a=fmtp` and `a=control`.
public struct SDPMedia: Sendable, Equatable {
    public var kind: String
    public var port: Int
    public var proto: String
    public var payloadType: UInt8
    /// `a=rtpmap:`'s encoding name as written (`H264`, `H265`, `mpeg4-generic`).
    public var encoding: String
    public var clockRate: Int
    public var channels: Int?
    /// `a=fmtp:` parameters in order; names keep their case, compare without it.
    public var formatParameters: [(name: String, value: String)]
    public var control: String?
    /// Other `a=` lines, written as given (`recvonly`, `framerate:25`, …).
    public var otherAttributes: [String]

    public init(kind: String, payloadType: UInt8, encoding: String, clockRate: Int, channels: Int? = nil,
                formatParameters: [(name: String, value: String)] = [], control: String? = nil, otherAttributes: [String] = []) {
        self.kind = kind
        self.port = 0
        self.proto = "RTP/AVP"
        self.payloadType = payloadType
        self.encoding = encoding
        self.clockRate = clockRate
        self.channels = channels
        self.formatParameters = formatParameters
        self.control = control
        self.otherAttributes = otherAttributes
    }

    public static func == (lhs: SDPMedia, rhs: SDPMedia) -> Bool {
        lhs.kind == rhs.kind && lhs.port == rhs.port && lhs.proto == rhs.proto && lhs.payloadType == rhs.payloadType
            && lhs.encoding == rhs.encoding && lhs.clockRate == rhs.clockRate && lhs.channels == rhs.channels
            && lhs.formatParameters.map(\.name) == rhs.formatParameters.map(\.name)
            && lhs.formatParameters.map(\.value) == rhs.formatParameters.map(\.value)
            && lhs.control == rhs.control && lhs.otherAttributes == rhs.otherAttributes
    }

    /// The value of `a=fmtp` parameter `name`, compared without case.
    public func parameter(_ name: String) -> String? {
        formatParameters.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    var lines: [String] {
        var lines = ["m=\(kind) \(port) \(proto) \(payloadType)"]
        let rtpmap = "a=rtpmap:\(payloadType) \(encoding)/\(clockRate)" + (channels.map { "/\($0)" } ?? "")
        lines.append(RTSPWire.clean(rtpmap))
        if !formatParameters.isEmpty {
            lines.append(RTSPWire.clean("a=fmtp:\(payloadType) " + formatParameters.map { "\($0.name)=\($0.value)" }.joined(separator: ";")))
        }
        lines += otherAttributes.map { RTSPWire.clean("a=\($0)") }
        if let control { lines.append(RTSPWire.clean("a=control:\(control)")) }
        return lines
    }

    init(mediaLine value: String, number: Int) throws(SDPError) {
        let fields = value.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 4, let port = decimal(fields[1].split(separator: "/").first ?? "", max: 65535),
              let payloadType = decimal(fields[3], max: 127)
        else { throw .malformedLine(number, excerpt("m=" + value)) }
        self.init(kind: String(fields[0]), payloadType: UInt8(payloadType), encoding: "", clockRate: 0)
        self.port = port
        self.proto = String(fields[2])
        // Static payload types have no rtpmap (RFC 3551): the ones a camera may send.
        switch payloadType {
        case 0: (encoding, clockRate, channels) = ("PCMU", 8000, 1)
        case 8: (encoding, clockRate, channels) = ("PCMA", 8000, 1)
        case 26: (encoding, clockRate) = ("JPEG", 90000)
        default: break
        }
    }

    mutating func read(attribute name: String, value: String?, number: Int) throws(SDPError) {
        switch name {
        case "rtpmap":
            guard let value, let space = value.firstIndex(of: " "),
                  let type = decimal(value[..<space], max: 127) else { throw .malformedLine(number, excerpt("a=rtpmap:" + (value ?? ""))) }
            guard type == Int(payloadType) else { return }
            let parts = value[value.index(after: space)...].trimmingSpaces.split(separator: "/")
            guard parts.count >= 2, parts.count <= 3, let rate = decimal(parts[1], max: 10_000_000), rate > 0 else {
                throw .malformedLine(number, excerpt("a=rtpmap:" + value))
            }
            encoding = String(parts[0])
            clockRate = rate
            if parts.count == 3 {
                guard let count = decimal(parts[2], max: 64), count > 0 else { throw .malformedLine(number, excerpt("a=rtpmap:" + value)) }
                channels = count
            }
        case "fmtp":
            guard let value, let space = value.firstIndex(of: " "),
                  let type = decimal(value[..<space], max: 127) else { throw .malformedLine(number, excerpt("a=fmtp:" + (value ?? ""))) }
            guard type == Int(payloadType) else { return }
            var parameters: [(name: String, value: String)] = []
            for parameter in value[value.index(after: space)...].split(separator: ";") {
                let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingSpaces }
                guard let key = pair.first, !key.isEmpty else { continue }
                guard parameters.count < SessionDescription.maxAttributesPerMedia else {
                    throw .tooManyParameters(limit: SessionDescription.maxAttributesPerMedia)
                }
                parameters.append((key, pair.count == 2 ? pair[1] : ""))
            }
            formatParameters = parameters
        case "control":
            // A URL: what the client sends in a request line and signs in Digest must be the same bytes.
            guard let value, value.isRequestURI else { throw .malformedLine(number, excerpt("a=control:" + (value ?? ""))) }
            control = value
        default:
            guard otherAttributes.count < SessionDescription.maxAttributesPerMedia else {
                throw .tooManyParameters(limit: SessionDescription.maxAttributesPerMedia)
            }
            otherAttributes.append(value.map { "\(name):\($0)" } ?? name)
        }
    }
}

/// Why a session description was refused.
public enum SDPError: Error, Sendable, Equatable, CustomStringConvertible {
    case tooLarge(limit: Int)
    case tooManyMedia(limit: Int)
    case tooManyParameters(limit: Int)
    case missingVersion
    case malformedLine(Int, String)
    case invalidParameterSet(String)
    case parameterSetTooLarge(name: String, limit: Int)
    case missingParameter(String)
    case invalidAudioConfig(String)

    public var description: String {
        switch self {
        case .tooLarge(let limit): "SDP larger than \(limit) bytes"
        case .tooManyMedia(let limit): "SDP with more than \(limit) media"
        case .tooManyParameters(let limit): "SDP media with more than \(limit) attributes or format parameters"
        case .missingVersion: "SDP without v=0"
        case .malformedLine(let number, let line): "malformed SDP line \(number): \"\(line)\""
        case .invalidParameterSet(let name): "invalid base64 in SDP parameter \(name)"
        case .parameterSetTooLarge(let name, let limit): "SDP parameter \(name) decodes to more than \(limit) bytes"
        case .missingParameter(let name): "SDP media without \(name)"
        case .invalidAudioConfig(let reason): "invalid AAC AudioSpecificConfig: \(reason)"
        }
    }
}

// MARK: - Codecs

extension SDPMedia {
    /// Decoded parameter sets above this size are refused: real ones are
    /// tens of bytes, a VPS or SPS with every extension a few hundred.
    public static let maxParameterSetBytes = 4096
    public static let maxParameterSets = 16

    /// H.264 video (RFC 6184) from its SPS and PPS NAL units (header byte included).
    public static func h264(sps: [UInt8], pps: [[UInt8]], payloadType: UInt8 = 96, control: String) throws(SDPError) -> SDPMedia {
        guard sps.count >= 4 else { throw .invalidParameterSet("sps (shorter than 4 bytes)") }
        let profileLevel = hex(sps[1...3]).uppercased()
        let sets = ([sps] + pps).map { Data($0).base64EncodedString() }.joined(separator: ",")
        return SDPMedia(kind: "video", payloadType: payloadType, encoding: "H264", clockRate: 90000, formatParameters: [
            ("packetization-mode", "1"), ("profile-level-id", profileLevel), ("sprop-parameter-sets", sets),
        ], control: control)
    }

    /// H.265 video (RFC 7798) from its VPS, SPS and PPS NAL units.
    public static func h265(vps: [UInt8], sps: [UInt8], pps: [UInt8], payloadType: UInt8 = 96, control: String) -> SDPMedia {
        SDPMedia(kind: "video", payloadType: payloadType, encoding: "H265", clockRate: 90000, formatParameters: [
            ("sprop-vps", Data(vps).base64EncodedString()), ("sprop-sps", Data(sps).base64EncodedString()),
            ("sprop-pps", Data(pps).base64EncodedString()),
        ], control: control)
    }

    /// AAC audio (RFC 3640 AAC-hbr) from its AudioSpecificConfig, whose
    /// sampling rate and channel count become the rtpmap's.
    public static func aac(audioSpecificConfig config: [UInt8], payloadType: UInt8 = 97, control: String) throws(SDPError) -> SDPMedia {
        let (rate, channels) = try audioParameters(config)
        return SDPMedia(kind: "audio", payloadType: payloadType, encoding: "mpeg4-generic", clockRate: rate, channels: channels,
                        formatParameters: [
                            ("streamtype", "5"), ("profile-level-id", "1"), ("mode", "AAC-hbr"), ("sizelength", "13"),
                            ("indexlength", "3"), ("indexdeltalength", "3"), ("config", hex(config[...])),
                        ], control: control)
    }

    /// Sampling rate and channels of an AudioSpecificConfig (ISO 14496-3 §1.6.2.1).
    static func audioParameters(_ config: [UInt8]) throws(SDPError) -> (rate: Int, channels: Int) {
        guard config.count >= 2 else { throw .invalidAudioConfig("shorter than 2 bytes") }
        var bits = BitReader(config)
        var objectType = bits.read(5)
        if objectType == 31 { objectType = 32 + bits.read(6) }
        guard objectType > 0 else { throw .invalidAudioConfig("object type 0") }
        let index = bits.read(4)
        let rates = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350]
        let rate: Int
        if index == 15 {
            rate = bits.read(24)
        } else {
            guard index < rates.count else { throw .invalidAudioConfig("sampling index \(index)") }
            rate = rates[index]
        }
        let channels = bits.read(4)
        guard !bits.overrun else { throw .invalidAudioConfig("truncated") }
        guard rate > 0, (1...7).contains(channels) else { throw .invalidAudioConfig("rate \(rate), channel configuration \(channels)") }
        return (rate, channels == 7 ? 8 : channels)
    }

    /// SPS and PPS from `sprop-parameter-sets`, each bounded.
    public func h264ParameterSets() throws(SDPError) -> [[UInt8]] {
        guard let value = parameter("sprop-parameter-sets") else { throw .missingParameter("sprop-parameter-sets") }
        let parts = value.split(separator: ",")
        guard parts.count <= Self.maxParameterSets else { throw .tooManyParameters(limit: Self.maxParameterSets) }
        return try parts.map { (part: Substring) throws(SDPError) -> [UInt8] in try Self.base64(part, name: "sprop-parameter-sets") }
    }

    /// VPS, SPS and PPS from `sprop-vps`, `sprop-sps`, `sprop-pps` (the first of each when several).
    public func h265ParameterSets() throws(SDPError) -> (vps: [UInt8], sps: [UInt8], pps: [UInt8]) {
        func one(_ name: String) throws(SDPError) -> [UInt8] {
            guard let value = parameter(name) else { throw .missingParameter(name) }
            guard let first = value.split(separator: ",").first else { throw .invalidParameterSet(name) }
            return try Self.base64(first, name: name)
        }
        return (try one("sprop-vps"), try one("sprop-sps"), try one("sprop-pps"))
    }

    /// The AudioSpecificConfig from `config=` (hex), bounded.
    public func aacConfig() throws(SDPError) -> [UInt8] {
        guard let value = parameter("config") else { throw .missingParameter("config") }
        guard value.utf8.count <= 2 * 64 else { throw .parameterSetTooLarge(name: "config", limit: 64) }
        guard value.utf8.count % 2 == 0, let bytes = unhex(value) else { throw .invalidParameterSet("config") }
        return bytes
    }

    static func base64(_ text: Substring, name: String) throws(SDPError) -> [UInt8] {
        // Checked before decoding: 4 characters per 3 bytes.
        guard text.utf8.count <= (maxParameterSetBytes + 2) / 3 * 4 else {
            throw .parameterSetTooLarge(name: name, limit: maxParameterSetBytes)
        }
        var padded = String(text.trimmingSpaces)
        while padded.utf8.count % 4 != 0 { padded += "=" }
        guard let data = Data(base64Encoded: padded), !data.isEmpty else { throw .invalidParameterSet(name) }
        guard data.count <= maxParameterSetBytes else { throw .parameterSetTooLarge(name: name, limit: maxParameterSetBytes) }
        return Array(data)
    }
}

struct BitReader {
    let bytes: [UInt8]
    var position = 0
    var overrun = false

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func read(_ count: Int) -> Int {
        var value = 0
        for _ in 0..<count {
            guard position / 8 < bytes.count else { overrun = true; return 0 }
            value = value << 1 | Int(bytes[position / 8] >> (7 - UInt8(position % 8)) & 1)
            position += 1
        }
        return value
    }
}

func hex(_ bytes: some Collection<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    out.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0x0F)])
    }
    return String(decoding: out, as: UTF8.self)
}

func unhex(_ text: String) -> [UInt8]? {
    var out = [UInt8]()
    var high: UInt8?
    for byte in text.utf8 {
        let nibble: UInt8
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = byte - UInt8(ascii: "A") + 10
        default: return nil
        }
        if let h = high { out.append(h << 4 | nibble); high = nil } else { high = nibble }
    }
    return high == nil ? out : nil
}

extension String {
    /// Printable ASCII without spaces: a request line's URI as sent.
    var isRequestURI: Bool {
        !isEmpty && utf8.count <= 4096 && utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    var isAbsoluteRTSPURL: Bool {
        let lower = prefix(8).lowercased()
        return lower.hasPrefix("rtsp://") || lower.hasPrefix("rtsps://") || lower.hasPrefix("rtspu://")
    }
}
