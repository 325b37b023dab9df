/// One `m=` section of an offer.
public struct SDPOfferSection: Sendable {
    /// `video`, `audio`, `application`…
    public let kind: String
    public let port: Int
    public let proto: String
    /// The formats (payload types, or `webrtc-datachannel`) in offer order.
    public let formats: [String]
    /// Where the `m=` line starts in the offer's text.
    public let offset: Int

    public var mid: String?
    public var transport = SDPTransportAttributes()
    public var direction: SDPDirection?
    public var rtcpMux = false
    public var rtcpReducedSize = false
    public var bundleOnly = false
    public var rtpMaps: [SDPRTPMap] = []
    /// `a=fmtp` parameters by payload type, as written.
    public var formatParameters: [UInt8: String] = [:]
    /// `a=rtcp-fb` lines: the payload type (`*` for all) and the feedback (`nack`, `nack pli`, `ccm fir`…).
    public var rtcpFeedback: [(payloadType: String, feedback: String)] = []
    public var extensionMaps: [SDPExtensionMap] = []
    private var attributeCount = 0
    private var mappedLow: UInt64 = 0
    private var mappedHigh: UInt64 = 0

    init(mediaLine: Substring, offset: Int) throws(WebRTCWireError) {
        let fields = mediaLine.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 4, let port = Int(fields[1]), (0...65535).contains(port) else {
            throw WebRTCWireError(.malformed, "an m= line that is not <media> <port> <proto> <format>...", offset: offset)
        }
        guard fields.count <= 3 + 128 else { throw WebRTCWireError(.tooLarge, "more than 128 formats in an m= line", offset: offset) }
        kind = try SDPSyntax.token(fields[0], what: "media", offset: offset)
        self.port = port
        proto = try SDPSyntax.token(fields[2], what: "proto", offset: offset, extra: "/")
        var formats: [String] = []
        for format in fields.dropFirst(3) { formats.append(try SDPSyntax.token(format, what: "format", offset: offset)) }
        self.formats = formats
        self.offset = offset
    }

    mutating func read(attribute: Substring, offset: Int) throws(WebRTCWireError) {
        attributeCount += 1
        guard attributeCount <= SDPOffer.maxAttributes else {
            throw WebRTCWireError(.tooLarge, "more than \(SDPOffer.maxAttributes) attributes in an m= section", offset: offset)
        }
        let (name, value) = SDPSyntax.split(attribute)
        switch name {
        case "mid":
            mid = try SDPSyntax.token(value ?? "", what: "mid", offset: offset)
        case "sendrecv", "sendonly", "recvonly", "inactive":
            direction = SDPDirection(rawValue: String(name))
        case "rtcp-mux": rtcpMux = true
        case "rtcp-rsize": rtcpReducedSize = true
        case "bundle-only": bundleOnly = true
        case "rtpmap":
            let map = try SDPRTPMap(value ?? "", offset: offset)
            // A bit per payload type: duplicates found in constant time, however many lines.
            let bit: UInt64 = 1 << (map.payloadType % 64)
            guard (map.payloadType < 64 ? mappedLow : mappedHigh) & bit == 0 else {
                throw WebRTCWireError(.malformed, "a second a=rtpmap for payload type \(map.payloadType)", offset: offset)
            }
            if map.payloadType < 64 { mappedLow |= bit } else { mappedHigh |= bit }
            rtpMaps.append(map)
        case "fmtp":
            guard let value, let space = value.firstIndex(of: " "), let payloadType = UInt8(value[..<space]), payloadType < 128 else {
                throw WebRTCWireError(.malformed, "a=fmtp is not <payload type> <parameters>", offset: offset)
            }
            let parameters = value[value.index(after: space)...].trimmingSpaces
            guard parameters.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
                throw WebRTCWireError(.malformed, "a=fmtp parameters that are not printable ASCII", offset: offset)
            }
            if formatParameters[payloadType] == nil { formatParameters[payloadType] = String(parameters) }
        case "rtcp-fb":
            guard let value, let space = value.firstIndex(of: " ") else {
                throw WebRTCWireError(.malformed, "a=rtcp-fb is not <payload type> <feedback>", offset: offset)
            }
            rtcpFeedback.append((String(value[..<space]), String(value[value.index(after: space)...].trimmingSpaces)))
        case "extmap":
            extensionMaps.append(try SDPExtensionMap(value ?? "", offset: offset))
        default:
            try transport.read(name: name, value: value, offset: offset)
        }
    }

    /// The `a=rtpmap` of a payload type.
    public func rtpMap(_ payloadType: UInt8) -> SDPRTPMap? { rtpMaps.first { $0.payloadType == payloadType } }

    /// Whether the offer asks for `feedback` (`nack`, `nack pli`, `ccm fir`) on `payloadType`.
    public func offersFeedback(_ feedback: String, for payloadType: UInt8) -> Bool {
        rtcpFeedback.contains { ($0.payloadType == "*" || $0.payloadType == String(payloadType)) && $0.feedback == feedback }
    }
}

/// `a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]`.
public struct SDPRTPMap: Sendable, Equatable {
    public let payloadType: UInt8
    /// As written (`H264`, `VP8`, `opus`); compare without case.
    public let encoding: String
    public let clockRate: Int
    public let channels: Int?

    init(_ value: Substring, offset: Int) throws(WebRTCWireError) {
        let fields = value.split(separator: " ", omittingEmptySubsequences: true)
        let parts = fields.count == 2 ? fields[1].split(separator: "/", omittingEmptySubsequences: false) : []
        guard fields.count == 2, let payloadType = UInt8(fields[0]), payloadType < 128, (2...3).contains(parts.count),
              let rate = Int(parts[1]), (1...10_000_000).contains(rate) else {
            throw WebRTCWireError(.malformed, "a=rtpmap is not <payload type> <encoding>/<rate>", offset: offset)
        }
        self.payloadType = payloadType
        encoding = try SDPSyntax.token(parts[0], what: "encoding", offset: offset)
        clockRate = rate
        if parts.count == 3 {
            guard let channels = Int(parts[2]), (1...255).contains(channels) else {
                throw WebRTCWireError(.malformed, "a=rtpmap channel count is not 1-255", offset: offset)
            }
            self.channels = channels
        } else {
            channels = nil
        }
    }
}

/// `a=extmap:<id>[/<direction>] <uri>` (RFC 8285).
public struct SDPExtensionMap: Sendable, Equatable {
    public let id: Int
    public let direction: SDPDirection?
    public let uri: String

    init(_ value: Substring, offset: Int) throws(WebRTCWireError) {
        let fields = value.split(separator: " ", omittingEmptySubsequences: true)
        let head = fields.first?.split(separator: "/", maxSplits: 1) ?? []
        guard fields.count >= 2, let id = Int(head.first ?? ""), (1...4095).contains(id) else {
            throw WebRTCWireError(.malformed, "a=extmap is not <id>[/<direction>] <uri>", offset: offset)
        }
        self.id = id
        if head.count == 2 {
            guard let direction = SDPDirection(rawValue: String(head[1])) else {
                throw WebRTCWireError(.malformed, "a=extmap direction is not sendrecv, sendonly, recvonly or inactive", offset: offset)
            }
            self.direction = direction
        } else {
            direction = nil
        }
        uri = String(fields[1])
    }
}

/// The small lexers the offer needs.
enum SDPSyntax {
    /// `name:value` (value trimmed), or `name` alone; the name lowercased.
    static func split(_ attribute: Substring) -> (Substring, Substring?) {
        guard let colon = attribute.firstIndex(of: ":") else { return (Substring(attribute.lowercased()), nil) }
        return (Substring(attribute[..<colon].lowercased()), attribute[attribute.index(after: colon)...].trimmingSpaces)
    }

    /// RFC 8866's token characters (plus `extra`), 1–64 of them.
    static func token(_ text: Substring, what: String, offset: Int, extra: String = "") throws(WebRTCWireError) -> String {
        let allowed = "!#$%&'*+-.^_`{|}~" + extra
        guard (1...64).contains(text.utf8.count),
              text.unicodeScalars.allSatisfy({ ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)))
                  || allowed.unicodeScalars.contains($0) }) else {
            throw WebRTCWireError(.malformed, "a \(what) that is not 1-64 token characters", offset: offset)
        }
        return String(text)
    }

    /// RFC 8839's ice-chars (ALPHA / DIGIT / `+` / `/`) within `lengths`.
    static func iceChars(_ text: Substring, lengths: ClosedRange<Int>, what: String, offset: Int) throws(WebRTCWireError) -> String {
        guard lengths.contains(text.utf8.count), text.utf8.allSatisfy(isICEChar) else {
            throw WebRTCWireError(.malformed, "an \(what) that is not \(lengths.lowerBound)-\(lengths.upperBound) ice-chars", offset: offset)
        }
        return String(text)
    }

    static func isICEChar(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
            || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/")
    }

    /// `AB:CD:…` to bytes; nil when malformed or over 64 bytes.
    static func colonHex(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 64 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard part.utf8.count == 2, part.utf8.allSatisfy({ $0 < 0x80 && Character(UnicodeScalar($0)).isHexDigit }),
                  let byte = UInt8(part, radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var text = self
        while text.first == " " || text.first == "\t" { text = text.dropFirst() }
        while text.last == " " || text.last == "\t" { text = text.dropLast() }
        return text
    }
}
