public import NIOCore
public import Crypto

/// An ICE connectivity check that passed ``STUNRequestCheck``: only such a
/// value can move an ``ICELiteState``, so an unauthenticated packet cannot.
public struct STUNCheckedRequest: Sendable {
    public let transactionID: STUNTransactionID
    /// The remote ufrag from USERNAME's second half.
    public let remoteUfrag: String
    /// USE-CANDIDATE: the controlling peer nominates the pair it came over.
    public let useCandidate: Bool
    public let priority: UInt32?
    /// ICE-CONTROLLING's tie-breaker.
    public let iceControlling: UInt64?

    init(transactionID: STUNTransactionID, remoteUfrag: String, useCandidate: Bool, priority: UInt32?, iceControlling: UInt64?) {
        self.transactionID = transactionID
        self.remoteUfrag = remoteUfrag
        self.useCandidate = useCandidate
        self.priority = priority
        self.iceControlling = iceControlling
    }
}

/// Checks a Binding request against one session's ICE credentials, as a
/// lite agent must (RFC 8445 §7.3, RFC 8489 §9.1.3): a Binding request,
/// FINGERPRINT right when present, USERNAME `<local ufrag>:<remote ufrag>`,
/// MESSAGE-INTEGRITY under the local ice-pwd (compared in constant time).
/// The cheap checks come first, so garbage costs no HMAC. A peer sending
/// ICE-CONTROLLED (it thinks it is controlled too, and a lite agent always
/// is) gets `.roleConflict`: answer 487.
public struct STUNRequestCheck: Sendable {
    public let localUfrag: String
    /// The remote ufrag the offer gave; nil accepts any.
    public let remoteUfrag: String?
    /// The HMAC key: the local ice-pwd's bytes (short-term credential).
    public let key: SymmetricKey

    public init(localUfrag: String, localPassword: String, remoteUfrag: String? = nil) {
        self.localUfrag = localUfrag
        self.remoteUfrag = remoteUfrag
        key = SymmetricKey(data: Array(localPassword.utf8))
    }

    /// The local ufrag a request is addressed to (USERNAME's first half), to
    /// find the session before any check; nil when USERNAME is missing or has no colon.
    public static func localUfrag(of message: STUNMessage) -> Substring? {
        guard let username = message.username, let colon = username.firstIndex(of: ":") else { return nil }
        return username[..<colon]
    }

    /// Checks `message`; returns what the agent needs from it.
    /// - Throws: `.notBindingRequest`, `.fingerprint`, `.username`, `.integrity` or `.roleConflict`.
    public func check(_ message: STUNMessage) throws(WebRTCWireError) -> STUNCheckedRequest {
        guard message.isBindingRequest else {
            throw WebRTCWireError(.notBindingRequest, "a STUN message of type 0x\(String(message.type, radix: 16)), not a Binding request")
        }
        if message.verifyFingerprint() == false {
            throw WebRTCWireError(.fingerprint, "FINGERPRINT does not match", offset: message.fingerprintOffset ?? 0)
        }
        guard let username = message.username, let colon = username.firstIndex(of: ":"),
              username[..<colon] == localUfrag else {
            throw WebRTCWireError(.username, "USERNAME missing or not for this session")
        }
        let remote = String(username[username.index(after: colon)...])
        guard !remote.isEmpty, remoteUfrag == nil || remote == remoteUfrag else {
            throw WebRTCWireError(.username, "USERNAME's remote ufrag is not the offer's")
        }
        guard message.integrityOffset != nil else { throw WebRTCWireError(.integrity, "no MESSAGE-INTEGRITY") }
        guard message.verifyIntegrity(key: key) else {
            throw WebRTCWireError(.integrity, "MESSAGE-INTEGRITY does not match", offset: message.integrityOffset ?? 0)
        }
        guard message.iceControlled == nil else {
            throw WebRTCWireError(.roleConflict, "ICE-CONTROLLED to a lite agent, which is always controlled")
        }
        return STUNCheckedRequest(transactionID: message.transactionID, remoteUfrag: remote, useCandidate: message.useCandidate,
                                  priority: message.priority, iceControlling: message.iceControlling)
    }

    /// Parses and checks a datagram in one step.
    public func check(datagram: ByteBuffer) throws(WebRTCWireError) -> STUNCheckedRequest {
        try check(STUNMessage(parsing: datagram))
    }

    /// The signed success response to a checked request from `source`.
    public func successResponse(to request: STUNCheckedRequest, from source: STUNAddress) -> ByteBuffer {
        STUNMessageWriter.bindingSuccess(transactionID: request.transactionID, mapped: source, key: key)
    }
}

/// What a datagram on the shared WebRTC port is, by its first byte (RFC
/// 7983 §7; RTCP told from RTP by the second byte, RFC 5761 §4).
public enum WebRTCPacketKind: Sendable, Equatable {
    case stun, dtls, rtp, rtcp
    /// Empty, ZRTP (16–19), TURN channels (64–79) or anything else: dropped.
    case other
}

public enum WebRTCDemux {
    public static func classify(_ datagram: ByteBuffer) -> WebRTCPacketKind {
        guard let first = datagram.getInteger(at: datagram.readerIndex, as: UInt8.self) else { return .other }
        switch first {
        case 0...3: return .stun
        case 20...63: return .dtls
        case 128...191:
            // RTCP packet types 192–223 sit where RTP has its marker bit and payload type.
            guard let second = datagram.getInteger(at: datagram.readerIndex + 1, as: UInt8.self) else { return .other }
            return (192...223).contains(second) ? .rtcp : .rtp
        default: return .other
        }
    }
}
