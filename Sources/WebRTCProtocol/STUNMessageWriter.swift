public import NIOCore
public import Crypto

/// Writes one STUN message: the header, then attributes in order, keeping
/// the header's length current; MESSAGE-INTEGRITY and FINGERPRINT are
/// computed over what was written before them (RFC 8489 §14.5, §14.7).
public struct STUNMessageWriter: Sendable {
    public private(set) var bytes: ByteBuffer
    private var attributeCount = 0

    /// Binding request, success and error response types.
    public static let bindingRequestType: UInt16 = 0x0001
    public static let bindingSuccessType: UInt16 = 0x0101
    public static let bindingErrorType: UInt16 = 0x0111

    public init(type: UInt16, transactionID: STUNTransactionID) {
        bytes = ByteBuffer()
        bytes.reserveCapacity(128)
        bytes.writeInteger(type & 0x3FFF)
        bytes.writeInteger(UInt16(0))
        bytes.writeInteger(STUNMessage.magicCookie)
        bytes.writeInteger(transactionID.high)
        bytes.writeInteger(transactionID.low)
    }

    /// Appends an attribute, padded to 4 bytes with `padding` (RFC 5769's
    /// samples pad with spaces; the value of padding is ignored on receipt).
    /// - Throws: `.tooLarge` when the message would exceed ``STUNMessage/maxBytes`` or
    ///   ``STUNMessage/maxAttributes``: what is written always reads back.
    public mutating func append<Value: Collection>(_ type: UInt16, _ value: Value, padding: UInt8 = 0)
        throws(WebRTCWireError) where Value.Element == UInt8 {
        let padded = (value.count + 3) & ~3
        try checkRoom(for: value.count)
        attributeCount += 1
        bytes.writeInteger(type)
        bytes.writeInteger(UInt16(value.count))
        bytes.writeBytes(value)
        bytes.writeRepeatingByte(padding, count: padded - value.count)
        setLength(bytes.readableBytes - 20)
    }

    public mutating func appendUsername(_ username: String) throws(WebRTCWireError) {
        guard username.utf8.count <= STUNMessage.maxUsernameBytes else {
            throw WebRTCWireError(.invalidArgument, "a USERNAME of \(username.utf8.count) bytes, at most \(STUNMessage.maxUsernameBytes)")
        }
        try append(STUNAttributeType.username, Array(username.utf8))
    }

    public mutating func appendPriority(_ priority: UInt32) throws(WebRTCWireError) {
        try append(STUNAttributeType.priority, Self.bigEndian(UInt64(priority), count: 4))
    }

    public mutating func appendUseCandidate() throws(WebRTCWireError) {
        try append(STUNAttributeType.useCandidate, [UInt8]())
    }

    public mutating func appendICEControlling(_ tieBreaker: UInt64) throws(WebRTCWireError) {
        try append(STUNAttributeType.iceControlling, Self.bigEndian(tieBreaker, count: 8))
    }

    public mutating func appendICEControlled(_ tieBreaker: UInt64) throws(WebRTCWireError) {
        try append(STUNAttributeType.iceControlled, Self.bigEndian(tieBreaker, count: 8))
    }

    /// XOR-MAPPED-ADDRESS (RFC 8489 §14.2): port XOR the cookie's top 16 bits,
    /// IPv4 XOR the cookie, IPv6 XOR the cookie and the transaction id.
    public mutating func appendXORMappedAddress(_ address: STUNAddress) throws(WebRTCWireError) {
        let tid = transactionID
        var value: [UInt8] = [0, address.family == .ipv4 ? 1 : 2]
        value += Self.bigEndian(UInt64(address.port ^ UInt16(STUNMessage.magicCookie >> 16)), count: 2)
        if address.family == .ipv4 {
            value += Self.bigEndian(UInt64(address.ipv4 ^ STUNMessage.magicCookie), count: 4)
        } else {
            value += Self.bigEndian(address.high ^ (UInt64(STUNMessage.magicCookie) << 32 | UInt64(tid.high)), count: 8)
            value += Self.bigEndian(address.low ^ tid.low, count: 8)
        }
        try append(STUNAttributeType.xorMappedAddress, value)
    }

    /// ERROR-CODE (RFC 8489 §14.8): `code` 300–699, the reason cut to 127 characters.
    public mutating func appendErrorCode(_ code: Int, reason: String) throws(WebRTCWireError) {
        guard (300...699).contains(code) else { throw WebRTCWireError(.invalidArgument, "error code \(code) outside 300-699") }
        let text = Array(String(reason.prefix(127)).utf8)
        try append(STUNAttributeType.errorCode, [0, 0, UInt8(code / 100), UInt8(code % 100)] + text)
    }

    /// MESSAGE-INTEGRITY: HMAC-SHA1 under `key` of everything written so far,
    /// with the length counting this attribute.
    public mutating func appendMessageIntegrity(key: SymmetricKey) throws(WebRTCWireError) {
        try checkRoom(for: 20)
        let end = bytes.readableBytes
        setLength(end - 20 + 24)
        let mac = STUNMessage.integrity(of: bytes, upTo: end, key: key)
        try append(STUNAttributeType.messageIntegrity, Array(mac))
    }

    /// FINGERPRINT: CRC-32 of everything written so far (length counting
    /// this attribute) XOR 0x5354554E. The last attribute.
    public mutating func appendFingerprint() throws(WebRTCWireError) {
        try checkRoom(for: 4)
        setLength(bytes.readableBytes - 20 + 8)
        var crc = CRC32()
        bytes.withUnsafeReadableBytes { crc.update($0) }
        try append(STUNAttributeType.fingerprint, Self.bigEndian(UInt64(crc.value ^ 0x5354_554E), count: 4))
    }

    /// A Binding success response for an ICE check (RFC 8445 §7.3.1.4):
    /// XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY under our ice-pwd, FINGERPRINT
    /// (64 bytes for IPv4, 76 for IPv6).
    public static func bindingSuccess(transactionID: STUNTransactionID, mapped: STUNAddress, key: SymmetricKey) -> ByteBuffer {
        var writer = STUNMessageWriter(type: bindingSuccessType, transactionID: transactionID)
        // Cannot fail: 76 bytes at most.
        try? writer.appendXORMappedAddress(mapped)
        try? writer.appendMessageIntegrity(key: key)
        try? writer.appendFingerprint()
        return writer.bytes
    }

    /// A Binding error response: 400 Bad Request, 401 Unauthenticated, 487
    /// Role Conflict (RFC 8445 §7.3.1.1)…; signed when `key` is given (a
    /// 401 cannot be, the requester's credentials being unknown), always with FINGERPRINT.
    public static func bindingError(transactionID: STUNTransactionID, code: Int, reason: String, key: SymmetricKey?)
        throws(WebRTCWireError) -> ByteBuffer {
        var writer = STUNMessageWriter(type: bindingErrorType, transactionID: transactionID)
        try writer.appendErrorCode(code, reason: reason)
        if let key { try writer.appendMessageIntegrity(key: key) }
        try writer.appendFingerprint()
        return writer.bytes
    }

    private var transactionID: STUNTransactionID {
        STUNTransactionID(high: bytes.getInteger(at: bytes.readerIndex + 8, as: UInt32.self) ?? 0,
                          low: bytes.getInteger(at: bytes.readerIndex + 12, as: UInt64.self) ?? 0)
    }

    private func checkRoom(for valueLength: Int) throws(WebRTCWireError) {
        guard bytes.readableBytes + 4 + ((valueLength + 3) & ~3) <= STUNMessage.maxBytes else {
            throw WebRTCWireError(.tooLarge, "a STUN message over \(STUNMessage.maxBytes) bytes", offset: bytes.readableBytes)
        }
        guard attributeCount < STUNMessage.maxAttributes else {
            throw WebRTCWireError(.tooLarge, "more than \(STUNMessage.maxAttributes) attributes", offset: bytes.readableBytes)
        }
    }

    private mutating func setLength(_ length: Int) {
        bytes.setInteger(UInt16(truncatingIfNeeded: length), at: bytes.readerIndex + 2)
    }

    static func bigEndian(_ value: UInt64, count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64(count - 1 - $0))) }
    }
}
