public import NIOCore

/// One RTP packet's payload as a packetizer makes it: up to 3 header bytes
/// (an FU indicator and header, a payload header) kept inline, then a body
/// that is a slice of the caller's frame whenever possible, so that a
/// packet is written once, straight into the outgoing buffer.
public struct RTPPayload: Sendable {
    private var head: UInt32
    /// How many of `head`'s low bytes come first (0...3).
    public private(set) var headCount: Int
    public var body: ByteBuffer
    /// The RTP marker bit for this packet.
    public var marker: Bool
    /// Added to the frame's RTP timestamp for this packet (AAC: the index of
    /// its first access unit times the samples per unit; video: 0).
    public var timestampOffset: UInt32

    init(head: UInt32 = 0, headCount: Int = 0, body: ByteBuffer, marker: Bool = false, timestampOffset: UInt32 = 0) {
        self.head = head
        self.headCount = headCount
        self.body = body
        self.marker = marker
        self.timestampOffset = timestampOffset
    }

    /// Payload bytes.
    public var count: Int { headCount + body.readableBytes }

    /// Appends the payload.
    public func write(to buffer: inout ByteBuffer) {
        var shift = 8 * (headCount - 1)
        while shift >= 0 {
            buffer.writeInteger(UInt8(truncatingIfNeeded: head >> UInt32(shift)))
            shift -= 8
        }
        buffer.writeImmutableBuffer(body)
    }

    /// The payload in one buffer (a copy when there are header bytes).
    public var bytes: ByteBuffer {
        if headCount == 0 { return body }
        var out = ByteBuffer()
        out.reserveCapacity(count)
        write(to: &out)
        return out
    }

    /// The whole RTP packet: `header` (its marker taken from this payload) then the payload.
    public func packet(header: RTPHeader) throws(RTPError) -> ByteBuffer {
        var header = header
        header.marker = marker
        var out = ByteBuffer()
        out.reserveCapacity(header.size + count)
        try header.write(to: &out)
        write(to: &out)
        return out
    }
}
