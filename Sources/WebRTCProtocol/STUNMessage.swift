public import NIOCore
public import Crypto

/// STUN's 96-bit transaction id (RFC 8489 §5), as integers.
public struct STUNTransactionID: Sendable, Hashable, CustomStringConvertible {
    public let high: UInt32
    public let low: UInt64

    public init(high: UInt32, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// A fresh id from `generator` (a requester's; a responder copies the request's).
    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> STUNTransactionID {
        STUNTransactionID(high: UInt32.random(in: .min ... .max, using: &generator),
                          low: UInt64.random(in: .min ... .max, using: &generator))
    }

    public var description: String {
        let text = String(high, radix: 16) + String(repeating: "0", count: 16 - String(low, radix: 16).count) + String(low, radix: 16)
        return String(repeating: "0", count: 24 - text.count) + text
    }
}

/// The attribute types camflow reads or writes (RFC 8489 §14, RFC 8445 §16.1).
public enum STUNAttributeType {
    public static let mappedAddress: UInt16 = 0x0001
    public static let username: UInt16 = 0x0006
    public static let messageIntegrity: UInt16 = 0x0008
    public static let errorCode: UInt16 = 0x0009
    public static let xorMappedAddress: UInt16 = 0x0020
    public static let priority: UInt16 = 0x0024
    public static let useCandidate: UInt16 = 0x0025
    public static let software: UInt16 = 0x8022
    public static let fingerprint: UInt16 = 0x8028
    public static let iceControlled: UInt16 = 0x8029
    public static let iceControlling: UInt16 = 0x802A
}

/// One attribute: its type and its value, a slice of the message (no copy,
/// padding excluded); `offset` is where its 4-byte header starts.
public struct STUNAttribute: Sendable {
    public let type: UInt16
    public let value: ByteBuffer
    public let offset: Int
}

/// A STUN message's class (RFC 8489 §5: the two C bits of the type).
public enum STUNClass: UInt8, Sendable {
    case request = 0, indication = 1, successResponse = 2, errorResponse = 3
}

/// One STUN message read from a datagram (RFC 8489 §5, §14): the header
/// checked (top bits 00, length a multiple of 4 equal to what follows, magic
/// cookie), attributes as slices. Attributes after MESSAGE-INTEGRITY other
/// than FINGERPRINT are ignored, as §14.5 says; anything after FINGERPRINT is
/// refused. MESSAGE-INTEGRITY and FINGERPRINT are located, not checked:
/// ``verifyIntegrity(key:)`` and ``verifyFingerprint()`` do that.
public struct STUNMessage: Sendable {
    public static let magicCookie: UInt32 = 0x2112_A442
    /// A datagram's worth: a browser's Binding request is about 100 bytes;
    /// 1280 is IPv6's minimum MTU, which RFC 8489 §6.1 asks STUN over UDP to stay in.
    public static let maxBytes = 1280
    public static let maxAttributes = 32
    /// RFC 8489 §14.3: a USERNAME is less than 509 bytes.
    public static let maxUsernameBytes = 508

    /// The 14-bit type: method and class.
    public let type: UInt16
    public let transactionID: STUNTransactionID
    public let attributes: [STUNAttribute]
    /// Where MESSAGE-INTEGRITY's header starts, if the message has one.
    public let integrityOffset: Int?
    /// Where FINGERPRINT's header starts, if the message has one.
    public let fingerprintOffset: Int?
    /// The whole message (a slice of what was read).
    public let bytes: ByteBuffer

    public var method: UInt16 { (type & 0x000F) | ((type >> 1) & 0x0070) | ((type >> 2) & 0x0F80) }
    public var messageClass: STUNClass { STUNClass(rawValue: UInt8(((type >> 7) & 2) | ((type >> 4) & 1)))! }
    public var isBindingRequest: Bool { type == 0x0001 }

    /// Whether a datagram looks like STUN before parsing (RFC 7983: first byte 0–3, then the magic cookie).
    public static func looksLikeSTUN(_ datagram: ByteBuffer) -> Bool {
        datagram.readableBytes >= 20 && (datagram.getInteger(at: datagram.readerIndex, as: UInt8.self) ?? 0xFF) < 4
            && datagram.getInteger(at: datagram.readerIndex + 4, as: UInt32.self) == magicCookie
    }

    /// Reads one message that must fill the whole datagram.
    /// - Throws: ``WebRTCWireError`` for anything truncated, oversized or malformed; never traps.
    public init(parsing datagram: ByteBuffer) throws(WebRTCWireError) {
        let count = datagram.readableBytes
        let start = datagram.readerIndex
        guard count >= 20 else { throw WebRTCWireError(.truncated, "a STUN message of \(count) bytes, at least 20 needed") }
        guard count <= Self.maxBytes else {
            throw WebRTCWireError(.tooLarge, "a STUN message of \(count) bytes, at most \(Self.maxBytes)")
        }
        func u16(_ at: Int) -> UInt16 { datagram.getInteger(at: start + at, as: UInt16.self) ?? 0 }
        let rawType = u16(0)
        guard rawType & 0xC000 == 0 else { throw WebRTCWireError(.badHeader, "the top two bits of a STUN type must be 0") }
        let length = Int(u16(2))
        guard length % 4 == 0, 20 + length == count else {
            throw WebRTCWireError(.badLength, "a STUN length of \(length) in a datagram of \(count) bytes", offset: 2)
        }
        guard datagram.getInteger(at: start + 4, as: UInt32.self) == Self.magicCookie else {
            throw WebRTCWireError(.badHeader, "no STUN magic cookie", offset: 4)
        }
        var attributes: [STUNAttribute] = []
        var integrity: Int?
        var fingerprint: Int?
        var offset = 20
        while offset < count {
            guard fingerprint == nil else {
                throw WebRTCWireError(.malformed, "an attribute after FINGERPRINT", offset: offset)
            }
            guard count - offset >= 4 else { throw WebRTCWireError(.truncated, "an attribute header cut short", offset: offset) }
            let type = u16(offset)
            let valueLength = Int(u16(offset + 2))
            let padded = (valueLength + 3) & ~3
            guard padded <= count - offset - 4 else {
                throw WebRTCWireError(.badLength, "an attribute of \(valueLength) bytes, \(count - offset - 4) left", offset: offset)
            }
            let value = datagram.getSlice(at: start + offset + 4, length: valueLength) ?? ByteBuffer()
            switch type {
            case STUNAttributeType.messageIntegrity where integrity == nil:
                guard valueLength == 20 else {
                    throw WebRTCWireError(.malformed, "a MESSAGE-INTEGRITY of \(valueLength) bytes, not 20", offset: offset)
                }
                integrity = offset
            case STUNAttributeType.fingerprint:
                guard valueLength == 4 else {
                    throw WebRTCWireError(.malformed, "a FINGERPRINT of \(valueLength) bytes, not 4", offset: offset)
                }
                fingerprint = offset
            default:
                break
            }
            if integrity == nil || integrity == offset || type == STUNAttributeType.fingerprint {
                guard attributes.count < Self.maxAttributes else {
                    throw WebRTCWireError(.tooLarge, "more than \(Self.maxAttributes) attributes", offset: offset)
                }
                attributes.append(STUNAttribute(type: type, value: value, offset: offset))
            }
            offset += 4 + padded
        }
        type = rawType
        transactionID = STUNTransactionID(high: datagram.getInteger(at: start + 8, as: UInt32.self) ?? 0,
                                          low: datagram.getInteger(at: start + 12, as: UInt64.self) ?? 0)
        self.attributes = attributes
        integrityOffset = integrity
        fingerprintOffset = fingerprint
        bytes = datagram.getSlice(at: start, length: count) ?? ByteBuffer()
    }

    /// The first attribute of `type`'s value.
    public func value(of type: UInt16) -> ByteBuffer? { attributes.first { $0.type == type }?.value }

    /// USERNAME as text; nil when absent, too long or not UTF-8.
    public var username: String? {
        guard let value = value(of: STUNAttributeType.username), value.readableBytes <= Self.maxUsernameBytes else { return nil }
        return String(validating: value.readableBytesView, as: UTF8.self)
    }

    public var priority: UInt32? { fixed(STUNAttributeType.priority, as: UInt32.self) }
    public var useCandidate: Bool { value(of: STUNAttributeType.useCandidate) != nil }
    /// ICE-CONTROLLING's tie-breaker.
    public var iceControlling: UInt64? { fixed(STUNAttributeType.iceControlling, as: UInt64.self) }
    /// ICE-CONTROLLED's tie-breaker.
    public var iceControlled: UInt64? { fixed(STUNAttributeType.iceControlled, as: UInt64.self) }

    /// ERROR-CODE's number (300–699) and reason.
    public var errorCode: (code: Int, reason: String)? {
        guard let value = value(of: STUNAttributeType.errorCode), value.readableBytes >= 4,
              let classByte = value.getInteger(at: value.readerIndex + 2, as: UInt8.self),
              let number = value.getInteger(at: value.readerIndex + 3, as: UInt8.self),
              (3...6).contains(classByte & 0x07), number < 100 else { return nil }
        let reason = value.getSlice(at: value.readerIndex + 4, length: value.readableBytes - 4) ?? ByteBuffer()
        return (Int(classByte & 0x07) * 100 + Int(number), String(decoding: reason.readableBytesView, as: UTF8.self))
    }

    /// XOR-MAPPED-ADDRESS decoded (RFC 8489 §14.2); nil when absent or malformed.
    public var xorMappedAddress: STUNAddress? {
        guard let value = value(of: STUNAttributeType.xorMappedAddress), value.readableBytes >= 8 else { return nil }
        let at = value.readerIndex
        guard let family = value.getInteger(at: at + 1, as: UInt8.self),
              let port = value.getInteger(at: at + 2, as: UInt16.self) else { return nil }
        let xPort = port ^ UInt16(Self.magicCookie >> 16)
        switch (family, value.readableBytes) {
        case (0x01, 8):
            guard let address = value.getInteger(at: at + 4, as: UInt32.self) else { return nil }
            return STUNAddress(ipv4: address ^ Self.magicCookie, port: xPort)
        case (0x02, 20):
            guard let high = value.getInteger(at: at + 4, as: UInt64.self),
                  let low = value.getInteger(at: at + 12, as: UInt64.self) else { return nil }
            let mask = UInt64(Self.magicCookie) << 32 | UInt64(transactionID.high)
            return STUNAddress(ipv6High: high ^ mask, low: low ^ transactionID.low, port: xPort)
        default:
            return nil
        }
    }

    private func fixed<T: FixedWidthInteger>(_ type: UInt16, as: T.Type) -> T? {
        guard let value = value(of: type), value.readableBytes == MemoryLayout<T>.size else { return nil }
        return value.getInteger(at: value.readerIndex, as: T.self)
    }

    /// Whether FINGERPRINT matches (RFC 8489 §14.7: CRC-32 of the message up
    /// to it, XOR 0x5354554E); nil when the message has none.
    public func verifyFingerprint() -> Bool? {
        guard let offset = fingerprintOffset else { return nil }
        var crc = CRC32()
        bytes.withUnsafeReadableBytes { crc.update(UnsafeRawBufferPointer(rebasing: $0[0..<offset])) }
        let carried = bytes.getInteger(at: bytes.readerIndex + offset + 4, as: UInt32.self) ?? 0
        return carried == crc.value ^ 0x5354_554E
    }

    /// Whether MESSAGE-INTEGRITY is the HMAC-SHA1 of the message up to it
    /// under `key` (RFC 8489 §14.5: with the header's length counting up to
    /// the end of MESSAGE-INTEGRITY); false when the message has none.
    /// Compares in constant time.
    public func verifyIntegrity(key: SymmetricKey) -> Bool {
        guard let offset = integrityOffset else { return false }
        let expected = Self.integrity(of: bytes, upTo: offset, key: key)
        var difference: UInt8 = 0
        bytes.withUnsafeReadableBytes { raw in
            var index = 0
            for byte in expected {
                difference |= byte ^ raw[offset + 4 + index]
                index += 1
            }
        }
        return difference == 0
    }

    /// The HMAC-SHA1 of `message`'s first `end` bytes with the length field
    /// set to cover a MESSAGE-INTEGRITY written at `end`.
    static func integrity(of message: ByteBuffer, upTo end: Int, key: SymmetricKey) -> HashedAuthenticationCode<Insecure.SHA1> {
        var hmac = HMAC<Insecure.SHA1>(key: key)
        message.withUnsafeReadableBytes { raw in
            let length = UInt16(end - 20 + 24)
            hmac.update(data: UnsafeRawBufferPointer(rebasing: raw[0..<2]))
            hmac.update(data: [UInt8(length >> 8), UInt8(length & 0xFF)])
            hmac.update(data: UnsafeRawBufferPointer(rebasing: raw[4..<end]))
        }
        return hmac.finalize()
    }
}
