/// The stream a WHEP viewer asks for, as far as the answer cares.
public enum WHEPStreamCodec: Sendable, Equatable {
    /// H.264 with the profile of the stream's SPS.
    case h264(H264ProfileLevel)
    case h265
}

/// What camflow answers an offer with, decided before any text is written:
/// the one video section it sends into, its payload type, and the peer's
/// ICE credentials and DTLS fingerprint (design note §2).
///
/// H.264: among `H264/90000` payload types with `packetization-mode=1` (the
/// packetizer sends FU-A), the first whose profile is the stream's; else
/// Constrained Baseline, Baseline, Main in that order (browsers decode any
/// profile under any of these), else the first mode-1 type. H.265: the first
/// `H265/90000` offered. Every other section is answered rejected.
public struct WHEPNegotiation: Sendable {
    public let offer: SDPOffer
    /// Index in `offer.sections` of the video section answered.
    public let videoSection: Int
    public let payloadType: UInt8
    /// `H264` or `H265`, as the offer wrote it.
    public let encoding: String
    /// The offer's fmtp for the payload type, echoed in the answer.
    public let formatParameters: String?
    public let remoteUfrag: String
    public let remotePassword: String
    /// SHA-256 of the certificate the peer's DTLS must present.
    public let remoteFingerprint: [UInt8]
    /// Whether the answer keeps the video section in a BUNDLE group.
    public let bundled: Bool

    /// - Throws: `.noUsableVideo`, `.noUsableCodec` (HTTP 406), `.missingICECredentials`,
    ///   `.missingFingerprint`, `.setupPassive`, `.missingRTCPMux` (HTTP 400).
    public init(offer: SDPOffer, codec: WHEPStreamCodec) throws(WebRTCWireError) {
        self.offer = offer
        var chosen: (index: Int, payloadType: UInt8)?
        var sawVideo = false
        for (index, section) in offer.sections.enumerated() where section.kind == "video" && chosen == nil {
            guard section.port != 0 || section.bundleOnly,
                  section.direction == nil || section.direction == .recvonly || section.direction == .sendrecv else { continue }
            sawVideo = true
            if let payloadType = Self.choose(codec, in: section) { chosen = (index, payloadType) }
        }
        guard sawVideo else {
            throw WebRTCWireError(.noUsableVideo, "the offer has no video section that receives")
        }
        guard let chosen else {
            let what = switch codec {
            case .h264: "H.264 with packetization-mode=1"
            case .h265: "H.265"
            }
            throw WebRTCWireError(.noUsableCodec, "the offer has no \(what), the stream's codec")
        }
        let section = offer.sections[chosen.index]
        // The section's own ICE/DTLS attributes, else the BUNDLE tag's, else the session's.
        var tag: SDPTransportAttributes?
        if let mid = section.mid, let group = offer.bundleGroup(containing: mid), let first = group.first {
            tag = offer.sections.first { $0.mid == first }?.transport
        }
        let transport = section.transport.over((tag ?? SDPTransportAttributes()).over(offer.session))
        guard let ufrag = transport.iceUfrag, let password = transport.icePassword else {
            throw WebRTCWireError(.missingICECredentials, "the offer has no a=ice-ufrag and a=ice-pwd", offset: section.offset)
        }
        guard let fingerprint = transport.sha256Fingerprint else {
            throw WebRTCWireError(.missingFingerprint, "the offer has no a=fingerprint:sha-256", offset: section.offset)
        }
        guard transport.setup != .passive, transport.setup != .holdconn else {
            throw WebRTCWireError(.setupPassive, "the offer's a=setup is \(transport.setup!.rawValue); camflow is the DTLS server",
                                  offset: section.offset)
        }
        guard section.rtcpMux else {
            throw WebRTCWireError(.missingRTCPMux, "the offer's video has no a=rtcp-mux; camflow has one port for RTP and RTCP",
                                  offset: section.offset)
        }
        videoSection = chosen.index
        payloadType = chosen.payloadType
        encoding = section.rtpMap(chosen.payloadType)?.encoding ?? "H264"
        formatParameters = section.formatParameters[chosen.payloadType]
        remoteUfrag = ufrag
        remotePassword = password
        remoteFingerprint = fingerprint
        bundled = section.mid.map { offer.bundleGroup(containing: $0) != nil } ?? false
    }

    static func choose(_ codec: WHEPStreamCodec, in section: SDPOfferSection) -> UInt8? {
        let offered = section.formats.compactMap { UInt8($0) }.compactMap { section.rtpMap($0) }.filter { $0.clockRate == 90000 }
        switch codec {
        case .h265:
            return offered.first { $0.encoding.lowercased() == "h265" }?.payloadType
        case .h264(let stream):
            let usable = offered.filter { $0.encoding.lowercased() == "h264" }.compactMap { map -> (UInt8, H264Profile)? in
                let parameters = Self.parameters(section.formatParameters[map.payloadType] ?? "")
                guard parameters["packetization-mode"] == "1" else { return nil }
                // RFC 6184 §8.1: without profile-level-id, 42000A (Baseline).
                let level = parameters["profile-level-id"].flatMap { H264ProfileLevel(profileLevelID: $0) }
                    ?? H264ProfileLevel(profileIDC: 0x42, constraints: 0, levelIDC: 0x0A)
                return (map.payloadType, level.profile)
            }
            for wanted in [stream.profile, .constrainedBaseline, .baseline, .main] where wanted != .other {
                if let match = usable.first(where: { $0.1 == wanted }) { return match.0 }
            }
            return usable.first?.0
        }
    }

    /// `a=fmtp` parameters by lowercased name.
    static func parameters(_ text: String) -> [Substring: Substring] {
        var result: [Substring: Substring] = [:]
        for pair in text.split(separator: ";").prefix(64) {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            result[Substring(parts[0].trimmingSpaces.lowercased())] = parts[1].trimmingSpaces
        }
        return result
    }
}
