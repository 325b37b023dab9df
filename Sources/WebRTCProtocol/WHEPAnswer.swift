/// Local ICE credentials (RFC 8839 §5.4): ice-chars only, ufrag 4–256,
/// password 22–256 characters.
public struct ICECredentials: Sendable, Equatable {
    public let ufrag: String
    public let password: String

    /// - Throws: `.invalidArgument` for other characters or lengths.
    public init(ufrag: String, password: String) throws(WebRTCWireError) {
        _ = try Self.checked(ufrag, 4...256, "ice-ufrag")
        _ = try Self.checked(password, 22...256, "ice-pwd")
        self.ufrag = ufrag
        self.password = password
    }

    /// 8-character ufrag, 24-character password (144 bits) from `generator`,
    /// which must be a CSPRNG (`SystemRandomNumberGenerator`).
    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> ICECredentials {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        func draw(_ count: Int) -> String {
            String(decoding: (0..<count).map { _ in alphabet[Int.random(in: 0..<64, using: &generator)] }, as: UTF8.self)
        }
        return try! ICECredentials(ufrag: draw(8), password: draw(24))
    }

    private static func checked(_ text: String, _ lengths: ClosedRange<Int>, _ what: String) throws(WebRTCWireError) -> String {
        guard lengths.contains(text.utf8.count), text.utf8.allSatisfy(SDPSyntax.isICEChar) else {
            throw WebRTCWireError(.invalidArgument, "an \(what) that is not \(lengths.lowerBound)-\(lengths.upperBound) ice-chars")
        }
        return text
    }
}

/// A host candidate for the answer: an IPv4 or IPv6 address (digits, hex,
/// dots and colons only: it goes into the SDP verbatim) and the UDP port.
public struct WHEPCandidate: Sendable, Equatable {
    public let address: String
    public let port: UInt16

    public init(address: String, port: UInt16) throws(WebRTCWireError) {
        guard (2...45).contains(address.utf8.count), port != 0,
              address.utf8.allSatisfy({ $0 < 0x80 && (Character(UnicodeScalar($0)).isHexDigit || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: ":")) })
        else { throw WebRTCWireError(.invalidArgument, "a candidate address that is not an IP address, or port 0") }
        self.address = address
        self.port = port
    }

    public init(_ address: STUNAddress) throws(WebRTCWireError) {
        try self.init(address: address.host, port: address.port)
    }
}

/// What the answer says of camflow's side.
public struct WHEPAnswerParameters: Sendable {
    /// `o=`'s session id: random, below 2^63.
    public var sessionID: UInt64
    public var credentials: ICECredentials
    /// SHA-256 of camflow's DTLS certificate (32 bytes).
    public var fingerprint: [UInt8]
    /// In priority order; the first gets 2130706431 (RFC 8445 §5.1.2.1, host, local preference 65535).
    public var candidates: [WHEPCandidate]
    /// `a=ssrc:<ssrc> cname:<cname>`, written when both are set.
    public var ssrc: UInt32?
    public var cname: String?
    /// `a=msid:<stream> <track>`, written when set.
    public var msid: (stream: String, track: String)?
    /// Extra session-level `a=` lines (without `a=`), e.g. a bench's media clock.
    public var sessionAttributes: [String]

    public init(sessionID: UInt64, credentials: ICECredentials, fingerprint: [UInt8], candidates: [WHEPCandidate],
                ssrc: UInt32? = nil, cname: String? = nil, msid: (stream: String, track: String)? = nil, sessionAttributes: [String] = []) {
        self.sessionID = sessionID
        self.credentials = credentials
        self.fingerprint = fingerprint
        self.candidates = candidates
        self.ssrc = ssrc
        self.cname = cname
        self.msid = msid
        self.sessionAttributes = sessionAttributes
    }
}

extension WHEPNegotiation {
    /// The answer's text, CRLF line ends: `a=ice-lite`, the video section
    /// `sendonly` with `a=setup:passive`, the chosen payload type with the
    /// offer's fmtp and the feedback the offer asks for among nack, nack pli
    /// and ccm fir, the candidates and `a=end-of-candidates`; every other
    /// section rejected (port 0, `a=inactive`, kept out of BUNDLE), in offer order.
    /// - Throws: `.invalidArgument` for a fingerprint not 32 bytes, no candidate,
    ///   or cname/msid/session attributes that are not printable ASCII without spaces where needed.
    public func answer(_ parameters: WHEPAnswerParameters) throws(WebRTCWireError) -> String {
        guard parameters.fingerprint.count == 32 else {
            throw WebRTCWireError(.invalidArgument, "a sha-256 fingerprint of \(parameters.fingerprint.count) bytes, not 32")
        }
        guard !parameters.candidates.isEmpty, parameters.candidates.count <= 8 else {
            throw WebRTCWireError(.invalidArgument, "1-8 candidates, not \(parameters.candidates.count)")
        }
        func printable(_ text: String, spaces: Bool = false) throws(WebRTCWireError) -> String {
            guard !text.isEmpty, text.utf8.count <= 256,
                  text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F || (spaces && $0 == 0x20) }) else {
                throw WebRTCWireError(.invalidArgument, "an answer value that is not 1-256 printable ASCII characters")
            }
            return text
        }
        let video = offer.sections[videoSection]
        var lines = ["v=0", "o=- \(parameters.sessionID & 0x7FFF_FFFF_FFFF_FFFF) 2 IN IP4 127.0.0.1", "s=-", "t=0 0"]
        if bundled, let mid = video.mid { lines.append("a=group:BUNDLE \(mid)") }
        for attribute in parameters.sessionAttributes { lines.append("a=" + (try printable(attribute, spaces: true))) }
        lines.append("a=ice-lite")
        let fingerprint = parameters.fingerprint.map { ($0 < 16 ? "0" : "") + String($0, radix: 16, uppercase: true) }
            .joined(separator: ":")
        for (index, section) in offer.sections.enumerated() {
            guard index == videoSection else {
                lines += ["m=\(section.kind) 0 \(section.proto) \(section.formats[0])", "c=IN IP4 0.0.0.0"]
                if let mid = section.mid { lines.append("a=mid:\(mid)") }
                lines.append("a=inactive")
                continue
            }
            let pt = payloadType
            lines += ["m=video 9 \(video.proto) \(pt)", "c=IN IP4 0.0.0.0"]
            if let mid = video.mid { lines.append("a=mid:\(mid)") }
            lines += ["a=ice-ufrag:\(parameters.credentials.ufrag)", "a=ice-pwd:\(parameters.credentials.password)",
                      "a=fingerprint:sha-256 \(fingerprint)", "a=setup:passive", "a=sendonly", "a=rtcp-mux"]
            if video.rtcpReducedSize { lines.append("a=rtcp-rsize") }
            lines.append("a=rtpmap:\(pt) \(encoding)/90000")
            if let formatParameters { lines.append("a=fmtp:\(pt) \(formatParameters)") }
            for feedback in ["nack", "nack pli", "ccm fir"] where video.offersFeedback(feedback, for: pt) {
                lines.append("a=rtcp-fb:\(pt) \(feedback)")
            }
            if let ssrc = parameters.ssrc, let cname = parameters.cname {
                lines.append("a=ssrc:\(ssrc) cname:\(try printable(cname))")
            }
            if let msid = parameters.msid {
                lines.append("a=msid:\(try printable(msid.stream)) \(try printable(msid.track))")
            }
            for (rank, candidate) in parameters.candidates.enumerated() {
                let priority = (126 << 24) + ((65535 - rank) << 8) + 255
                lines.append("a=candidate:\(rank + 1) 1 udp \(priority) \(candidate.address) \(candidate.port) typ host")
            }
            lines.append("a=end-of-candidates")
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }
}
