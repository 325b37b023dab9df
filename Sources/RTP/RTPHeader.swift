public import NIOCore

/// The RTP fixed header (RFC 3550 §5.1) with its CSRC list and, if present,
/// the header extension's profile and data.
public struct RTPHeader: Sendable, Equatable {
    public var marker: Bool
    /// 7 bits.
    public var payloadType: UInt8
    public var sequenceNumber: UInt16
    public var timestamp: UInt32
    public var ssrc: UInt32
    /// At most 15.
    public var csrcs: [UInt32]
    /// The extension's 16-bit profile identifier, nil when the X bit is clear.
    public var extensionProfile: UInt16?
    /// The extension's data (a slice of the packet when parsed), a multiple of 4 bytes.
    public var extensionData: ByteBuffer
    /// Whether the packet carried padding (stripped from the payload when parsed; never written).
    public var padding: Bool

    public init(marker: Bool = false, payloadType: UInt8, sequenceNumber: UInt16, timestamp: UInt32, ssrc: UInt32,
                csrcs: [UInt32] = [], extensionProfile: UInt16? = nil, extensionData: ByteBuffer = ByteBuffer(),
                padding: Bool = false) {
        self.marker = marker
        self.payloadType = payloadType
        self.sequenceNumber = sequenceNumber
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.csrcs = csrcs
        self.extensionProfile = extensionProfile
        self.extensionData = extensionData
        self.padding = padding
    }

    /// Bytes `write(to:)` produces.
    public var size: Int { 12 + 4 * csrcs.count + (extensionProfile == nil ? 0 : 4 + extensionData.readableBytes) }

    /// Appends the header (padding is never written).
    /// - Throws: for more than 15 CSRCs, a payload type above 127, or extension data that is not whole 32-bit words.
    public func write(to buffer: inout ByteBuffer) throws(RTPError) {
        guard csrcs.count <= 15 else { throw RTPError(.tooLarge, "\(csrcs.count) CSRCs, at most 15") }
        guard payloadType < 128 else { throw RTPError(.invalidArgument, "payload type \(payloadType) above 127", offset: 1) }
        let extensionWords = extensionData.readableBytes / 4
        if extensionProfile != nil {
            guard extensionData.readableBytes % 4 == 0, extensionWords <= Int(UInt16.max) else {
                throw RTPError(.invalidArgument, "extension data of \(extensionData.readableBytes) bytes is not up to 65535 whole words")
            }
        }
        buffer.reserveCapacity(minimumWritableBytes: size)
        buffer.writeInteger(UInt8(0x80 | (extensionProfile == nil ? 0 : 0x10) | UInt8(csrcs.count)))
        buffer.writeInteger((marker ? 0x80 : 0) | payloadType)
        buffer.writeInteger(sequenceNumber)
        buffer.writeInteger(timestamp)
        buffer.writeInteger(ssrc)
        for csrc in csrcs { buffer.writeInteger(csrc) }
        if let extensionProfile {
            buffer.writeInteger(extensionProfile)
            buffer.writeInteger(UInt16(extensionWords))
            buffer.writeImmutableBuffer(extensionData)
        }
    }
}

/// One RTP packet: its header and its payload, a slice of the bytes it was read from.
public struct RTPPacket: Sendable, Equatable {
    public var header: RTPHeader
    public var payload: ByteBuffer

    public init(header: RTPHeader, payload: ByteBuffer) {
        self.header = header
        self.payload = payload
    }

    /// Reads one packet: version 2, the CSRC list, the extension (kept as a
    /// slice, bounds checked) and the padding (removed from the payload).
    /// - Throws: ``RTPError`` for anything truncated or malformed; never traps.
    public init(parsing bytes: ByteBuffer) throws(RTPError) {
        let start = bytes.readerIndex
        let count = bytes.readableBytes
        guard count >= 12 else { throw RTPError(.truncated, "an RTP packet of \(count) bytes, at least 12 needed") }
        func byte(_ at: Int) -> UInt8 { bytes.getInteger(at: start + at, as: UInt8.self) ?? 0 }
        func u16(_ at: Int) -> UInt16 { bytes.getInteger(at: start + at, as: UInt16.self) ?? 0 }
        func u32(_ at: Int) -> UInt32 { bytes.getInteger(at: start + at, as: UInt32.self) ?? 0 }
        let first = byte(0)
        guard first >> 6 == 2 else { throw RTPError(.badVersion, "RTP version \(first >> 6), only 2 is read") }
        let csrcCount = Int(first & 0x0F)
        var offset = 12 + 4 * csrcCount
        guard offset <= count else {
            throw RTPError(.truncated, "\(csrcCount) CSRCs need \(offset) bytes, the packet has \(count)", offset: 12)
        }
        var csrcs: [UInt32] = []
        if csrcCount > 0 {
            csrcs.reserveCapacity(csrcCount)
            for index in 0..<csrcCount { csrcs.append(u32(12 + 4 * index)) }
        }
        var extensionProfile: UInt16?
        var extensionData = ByteBuffer()
        if first & 0x10 != 0 {
            guard offset + 4 <= count else {
                throw RTPError(.badExtension, "the header extension's 4-byte header runs past the packet", offset: offset)
            }
            let words = Int(u16(offset + 2))
            let length = 4 * words
            guard length <= count - offset - 4 else {
                throw RTPError(.badExtension, "a header extension of \(length) bytes, \(count - offset - 4) left",
                               offset: offset)
            }
            extensionProfile = u16(offset)
            extensionData = bytes.getSlice(at: start + offset + 4, length: length) ?? ByteBuffer()
            offset += 4 + length
        }
        var end = count
        let padding = first & 0x20 != 0
        if padding {
            let padCount = Int(byte(count - 1))
            guard padCount >= 1, padCount <= count - offset else {
                throw RTPError(.badPadding, "a padding count of \(padCount) with \(count - offset) payload bytes",
                               offset: count - 1)
            }
            end -= padCount
        }
        let second = byte(1)
        header = RTPHeader(marker: second & 0x80 != 0, payloadType: second & 0x7F, sequenceNumber: u16(2),
                           timestamp: u32(4), ssrc: u32(8), csrcs: csrcs, extensionProfile: extensionProfile,
                           extensionData: extensionData, padding: padding)
        payload = bytes.getSlice(at: start + offset, length: end - offset) ?? ByteBuffer()
    }

    /// The packet's bytes: header then payload.
    public func bytes() throws(RTPError) -> ByteBuffer {
        var out = ByteBuffer()
        out.reserveCapacity(header.size + payload.readableBytes)
        try header.write(to: &out)
        out.writeImmutableBuffer(payload)
        return out
    }
}
