import NIOCore
import RTP
import WebRTCProtocol

/// The SRTP packets last sent to a peer, by sequence number, so a NACK is
/// answered with the very bytes sent (no second protection, which libsrtp
/// would refuse as a replay). Bounded by count: at most `capacity` packets
/// of at most an MTU each.
struct RetransmissionRing {
    private var slots: [(sequence: UInt16, packet: ByteBuffer)?]

    init(capacity: Int) {
        slots = Array(repeating: nil, count: capacity)
    }

    mutating func store(_ sequence: UInt16, _ packet: ByteBuffer) {
        slots[Int(sequence) % slots.count] = (sequence, packet)
    }

    func packet(_ sequence: UInt16) -> ByteBuffer? {
        guard let slot = slots[Int(sequence) % slots.count], slot.sequence == sequence else { return nil }
        return slot.packet
    }
}

/// One WHEP viewer: its ICE-lite state, DTLS connection, SRTP sessions and
/// RTP numbering. Lives on the endpoint's event loop only.
final class WebRTCPeer {
    let id: String
    let stream: String
    /// Who the per-client share of the session cap counts it against (the HTTP client's address group).
    let client: String?
    let check: STUNRequestCheck
    var ice: ICELiteState<SocketAddress>
    let remoteFingerprint: DTLSFingerprint
    let payloadType: UInt8
    let ssrc: UInt32
    /// Added to every frame's 90 kHz time: a random start (RFC 3550 §5.1).
    let timestampBase: UInt32
    private var sequence: UInt16
    /// Made at the first DTLS datagram from an address that passed a STUN check.
    var dtls: DTLSTransport?
    var dtlsStartedAt: Duration?
    var dtlsTimer: Scheduled<Void>?
    /// The one address the handshake runs with: the first checked address whose DTLS was heard.
    /// DTLS from any other address is ignored, so a session reflects at most one handshake.
    var dtlsAddress: SocketAddress?
    /// Where media, sender reports, NACK resends and PLI answers go, and the only address whose RTCP
    /// is read: the address the DTLS handshake completed with, fixed from then on. A spoofed check
    /// proves knowledge of ice-pwd, not the address; only the keyed peer can finish a handshake.
    private(set) var mediaAddress: SocketAddress?
    /// The last authenticated check or SRTCP datagram from `mediaAddress` (or the connection): consent (RFC 7675).
    var lastConsent: Duration?
    private(set) var outbound: SRTPSession?
    private var inbound: SRTPSession?
    /// Addresses that passed a STUN check (newest last, at most 4): the only ones whose DTLS and RTCP are read.
    private(set) var addresses: [SocketAddress] = []
    /// Frames are not sent until a keyframe (at the start, after a PLI/FIR, after frames were dropped).
    var needsKeyframe = true
    /// When the cached GOP was last sent for a PLI/FIR: at most one each 500 ms.
    var lastRefresh: Duration?
    private var ring: RetransmissionRing
    /// Resends in the current second: a keyed peer NACKing everything in a loop would make the
    /// endpoint resend without end; beyond ``resendsPerSecond`` a NACK is not answered.
    private var resends = RateWindow()
    /// About 10 Mbit/s of 1200-byte packets: twice a 4 Mbit/s stream lost whole.
    static let resendsPerSecond = 1000
    private(set) var packetCount: UInt32 = 0
    var resent = 0
    private var octetCount: UInt32 = 0
    /// The RTP timestamp of the last frame sent and when: sender reports extrapolate from it.
    private var lastSent: (timestamp: UInt32, at: Duration)?
    private var firSequences: [UInt32: UInt8] = [:]
    var rtcpFailures = 0

    init(id: String, stream: String, client: String?, check: STUNRequestCheck, answeredAt: Duration, remoteFingerprint: DTLSFingerprint,
         payloadType: UInt8, ringCapacity: Int, random: inout some RandomNumberGenerator) {
        self.id = id
        self.stream = stream
        self.client = client
        self.check = check
        ice = ICELiteState(answeredAt: answeredAt)
        self.remoteFingerprint = remoteFingerprint
        self.payloadType = payloadType
        ssrc = UInt32.random(in: 1...UInt32.max, using: &random)
        timestampBase = random.next()
        sequence = UInt16.random(in: 0...0x7FFF, using: &random)
        ring = RetransmissionRing(capacity: ringCapacity)
    }

    var isConnected: Bool { outbound != nil }

    /// Remembers an address that passed a check.
    func authenticated(_ address: SocketAddress) -> SocketAddress? {
        if addresses.contains(address) { return nil }
        addresses.append(address)
        return addresses.count > 4 ? addresses.removeFirst() : nil
    }

    /// Keys SRTP once the handshake completed and the peer's certificate is the offer's.
    func key(_ dtls: DTLSTransport, from address: SocketAddress, at now: Duration) throws -> Bool {
        guard let fingerprint = dtls.peerFingerprint, fingerprint.matches(remoteFingerprint) else { return false }
        let keys = try dtls.srtpKeys()
        outbound = try SRTPSession(keyAndSalt: keys.outbound, direction: .outbound)
        inbound = try SRTPSession(keyAndSalt: keys.inbound, direction: .inbound, replayWindow: 1024)
        mediaAddress = address
        lastConsent = now
        return true
    }

    /// Protects and hands to `write` one frame's payloads under this peer's
    /// header; returns the packets sent.
    func send(_ payloads: [RTPPayload], ticks: UInt32, at now: Duration, allocator: ByteBufferAllocator,
              write: (ByteBuffer) -> Void) -> Int {
        guard let outbound else { return 0 }
        let timestamp = timestampBase &+ ticks
        var sent = 0
        for payload in payloads {
            var packet = allocator.buffer(capacity: 12 + payload.count + 16)
            let header = RTPHeader(marker: payload.marker, payloadType: payloadType, sequenceNumber: sequence,
                                   timestamp: timestamp &+ payload.timestampOffset, ssrc: ssrc)
            do {
                try header.write(to: &packet)
                payload.write(to: &packet)
                try outbound.protect(rtp: &packet)
            } catch {
                continue
            }
            ring.store(sequence, packet)
            write(packet)
            sequence &+= 1
            packetCount &+= 1
            octetCount &+= UInt32(truncatingIfNeeded: payload.count)
            sent += 1
        }
        lastSent = (timestamp, now)
        return sent
    }

    /// A protected sender report (RFC 3550 §6.4.1): `wallNow` (Unix seconds)
    /// against where the RTP clock is now, from the last frame sent.
    func senderReport(wallNow: Double, now: Duration) -> ByteBuffer? {
        guard let outbound, let lastSent else { return nil }
        let elapsed = now - lastSent.at
        let ticks = elapsed.components.seconds &* 90000 &+ elapsed.components.attoseconds / 11_111_111_111_111
        let report = RTCPSenderReport(ssrc: ssrc, ntpTimestamp: RTCPSenderReport.ntpTimestamp(unixNanoseconds: Int64(wallNow * 1e9)),
                                      rtpTimestamp: lastSent.timestamp &+ UInt32(truncatingIfNeeded: max(ticks, 0)),
                                      packetCount: packetCount, octetCount: octetCount)
        var packet = ByteBuffer()
        do {
            try RTCPPacket.senderReport(report).write(to: &packet)
            try outbound.protect(rtcp: &packet)
        } catch {
            return nil
        }
        return packet
    }

    /// What the peer's RTCP asks for.
    struct Feedback {
        var resend: [ByteBuffer] = []
        var keyframe = false
        var bye = false
        /// The datagram passed SRTCP authentication: only the keyed peer could have sent it.
        var authenticated = false
    }

    /// Unprotects and reads an SRTCP datagram: NACKed packets still in the
    /// ring (at most 64 per datagram), PLI/FIR, BYE. Garbage is counted.
    func receiveRTCP(_ datagram: ByteBuffer, at now: Duration) -> Feedback {
        var feedback = Feedback()
        guard let inbound else { return feedback }
        var packet = datagram
        let packets: [RTCPPacket]
        do {
            try inbound.unprotect(rtcp: &packet)
            feedback.authenticated = true
            packets = try RTCPCompound.parse(packet)
        } catch {
            rtcpFailures += 1
            return feedback
        }
        for item in packets {
            switch item {
            case .nack(_, let media, let entries) where media == ssrc:
                for number in entries.lazy.flatMap(\.sequenceNumbers) where feedback.resend.count < 64 {
                    guard let stored = ring.packet(number) else { continue }
                    guard resends.take(limit: Self.resendsPerSecond, at: now) else { break }
                    feedback.resend.append(stored)
                }
            case .pictureLoss(_, let media) where media == ssrc:
                feedback.keyframe = true
            case .fullIntraRequest(let sender, let entries):
                for entry in entries where entry.ssrc == ssrc && firSequences[sender] != entry.sequenceNumber {
                    if firSequences.count < 16 || firSequences[sender] != nil { firSequences[sender] = entry.sequenceNumber }
                    feedback.keyframe = true
                }
            case .bye:
                feedback.bye = true
            default:
                break
            }
        }
        return feedback
    }
}
