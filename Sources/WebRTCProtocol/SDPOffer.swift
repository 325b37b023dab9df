public import NIOCore

/// An SDP offer as a WHEP player POSTs it (RFC 8866 syntax, JSEP's
/// attributes): the session level and each `m=` section with what an
/// answerer needs. Attacker input, so bounded (``maxBytes``, ``maxLines``,
/// ``maxLineBytes``, ``maxSections``, ``maxAttributes``); lines with control
/// characters are refused; values camflow echoes into its answer (mid,
/// proto, formats, fmtp) must be printable ASCII; lines it has no use for are skipped.
public struct SDPOffer: Sendable {
    public static let maxBytes = 65536
    public static let maxLines = 4096
    public static let maxLineBytes = 2048
    public static let maxSections = 16
    /// `a=` lines per section (and at session level).
    public static let maxAttributes = 512

    /// Session-level ICE and DTLS attributes (Firefox puts `a=fingerprint` here).
    public var session = SDPTransportAttributes()
    /// Each `a=group:BUNDLE`'s mids.
    public var bundleGroups: [[String]] = []
    public var sections: [SDPOfferSection] = []

    /// Reads an offer from an HTTP body: the size is checked before the text is decoded.
    public init(parsing body: ByteBuffer) throws(WebRTCWireError) {
        guard body.readableBytes <= Self.maxBytes else {
            throw WebRTCWireError(.tooLarge, "an offer of \(body.readableBytes) bytes, at most \(Self.maxBytes)")
        }
        guard let text = String(validating: body.readableBytesView, as: UTF8.self) else {
            throw WebRTCWireError(.malformed, "an offer that is not UTF-8")
        }
        try self.init(parsing: text)
    }

    public init(parsing text: String) throws(WebRTCWireError) {
        let utf8 = text.utf8
        guard utf8.count <= Self.maxBytes else {
            throw WebRTCWireError(.tooLarge, "an offer of \(utf8.count) bytes, at most \(Self.maxBytes)")
        }
        var sawVersion = false
        var lineCount = 0
        var sessionAttributes = 0
        var lineStart = utf8.startIndex
        var offset = 0
        while lineStart < utf8.endIndex {
            let lineEnd = utf8[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? utf8.endIndex
            var line = utf8[lineStart..<lineEnd]
            let lineOffset = offset
            offset += line.count + (lineEnd < utf8.endIndex ? 1 : 0)
            lineStart = lineEnd < utf8.endIndex ? utf8.index(after: lineEnd) : lineEnd
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            if line.isEmpty { continue }
            lineCount += 1
            guard lineCount <= Self.maxLines else { throw WebRTCWireError(.tooLarge, "more than \(Self.maxLines) lines", offset: lineOffset) }
            guard line.count <= Self.maxLineBytes else {
                throw WebRTCWireError(.tooLarge, "a line of \(line.count) bytes, at most \(Self.maxLineBytes)", offset: lineOffset)
            }
            guard !line.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) else {
                throw WebRTCWireError(.malformed, "a control character in line \(lineCount)", offset: lineOffset)
            }
            guard line.count >= 2, line[line.index(after: line.startIndex)] == UInt8(ascii: "=") else {
                throw WebRTCWireError(.malformed, "line \(lineCount) is not <type>=<value>", offset: lineOffset)
            }
            let type = line[line.startIndex]
            let value = Substring(line.dropFirst(2))
            switch type {
            case UInt8(ascii: "v"):
                guard value == "0", lineCount == 1 else {
                    throw WebRTCWireError(.malformed, "the first line must be v=0", offset: lineOffset)
                }
                sawVersion = true
            case UInt8(ascii: "m"):
                guard sawVersion else { throw WebRTCWireError(.malformed, "an offer not starting with v=0", offset: lineOffset) }
                guard sections.count < Self.maxSections else {
                    throw WebRTCWireError(.tooLarge, "more than \(Self.maxSections) m= sections", offset: lineOffset)
                }
                sections.append(try SDPOfferSection(mediaLine: value, offset: lineOffset))
            case UInt8(ascii: "a"):
                guard sawVersion else { throw WebRTCWireError(.malformed, "an offer not starting with v=0", offset: lineOffset) }
                if sections.isEmpty {
                    sessionAttributes += 1
                    guard sessionAttributes <= Self.maxAttributes else {
                        throw WebRTCWireError(.tooLarge, "more than \(Self.maxAttributes) session attributes", offset: lineOffset)
                    }
                    try readSessionAttribute(value, offset: lineOffset)
                } else {
                    try sections[sections.count - 1].read(attribute: value, offset: lineOffset)
                }
            default:
                guard sawVersion else { throw WebRTCWireError(.malformed, "an offer not starting with v=0", offset: lineOffset) }
            }
        }
        guard sawVersion else { throw WebRTCWireError(.malformed, "an empty offer") }
    }

    private mutating func readSessionAttribute(_ attribute: Substring, offset: Int) throws(WebRTCWireError) {
        let (name, value) = SDPSyntax.split(attribute)
        if name == "group", let value {
            let fields = value.split(separator: " ")
            guard fields.first == "BUNDLE" else { return }
            guard bundleGroups.count < 8, fields.count <= Self.maxSections + 1 else {
                throw WebRTCWireError(.tooLarge, "too many BUNDLE groups or mids", offset: offset)
            }
            var mids: [String] = []
            for mid in fields.dropFirst() { mids.append(try SDPSyntax.token(mid, what: "mid", offset: offset)) }
            bundleGroups.append(mids)
        } else {
            try session.read(name: name, value: value, offset: offset)
        }
    }

    /// The BUNDLE group holding `mid`, if any.
    public func bundleGroup(containing mid: String) -> [String]? { bundleGroups.first { $0.contains(mid) } }
}

/// The ICE and DTLS attributes that may stand at session or media level;
/// media level wins (RFC 8839 §5.4, RFC 8122 §5).
public struct SDPTransportAttributes: Sendable, Equatable {
    public var iceUfrag: String?
    public var icePassword: String?
    /// The `a=fingerprint:sha-256` value, 32 bytes (other hash functions are ignored).
    public var sha256Fingerprint: [UInt8]?
    public var setup: SDPSetup?

    public init() {}

    /// These attributes where set, else `fallback`'s.
    public func over(_ fallback: SDPTransportAttributes) -> SDPTransportAttributes {
        var merged = self
        merged.iceUfrag = iceUfrag ?? fallback.iceUfrag
        merged.icePassword = iceUfrag == nil ? fallback.icePassword : icePassword
        merged.sha256Fingerprint = sha256Fingerprint ?? fallback.sha256Fingerprint
        merged.setup = setup ?? fallback.setup
        return merged
    }

    mutating func read(name: Substring, value: Substring?, offset: Int) throws(WebRTCWireError) {
        switch name {
        case "ice-ufrag":
            iceUfrag = try SDPSyntax.iceChars(value ?? "", lengths: 4...256, what: "ice-ufrag", offset: offset)
        case "ice-pwd":
            icePassword = try SDPSyntax.iceChars(value ?? "", lengths: 22...256, what: "ice-pwd", offset: offset)
        case "fingerprint":
            let fields = (value ?? "").split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count == 2 else { throw WebRTCWireError(.malformed, "a=fingerprint is not <hash> <hex>", offset: offset) }
            guard fields[0].lowercased() == "sha-256" else { return }
            guard let bytes = SDPSyntax.colonHex(fields[1]), bytes.count == 32 else {
                throw WebRTCWireError(.malformed, "a sha-256 fingerprint that is not 32 colon-separated hex bytes", offset: offset)
            }
            if sha256Fingerprint == nil { sha256Fingerprint = bytes }
        case "setup":
            guard let value, let role = SDPSetup(rawValue: String(value)) else {
                throw WebRTCWireError(.malformed, "a=setup must be actpass, active, passive or holdconn", offset: offset)
            }
            setup = role
        default:
            break
        }
    }
}

/// `a=setup` (RFC 8842).
public enum SDPSetup: String, Sendable {
    case actpass, active, passive, holdconn
}

/// A section's direction attribute.
public enum SDPDirection: String, Sendable {
    case sendrecv, sendonly, recvonly, inactive
}
