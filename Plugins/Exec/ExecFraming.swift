import Camflow
import NIOCore

/// The framing between camflow and an `exec` child, both ways: per packet a
/// 4-byte big-endian header length, the JSON header (as in ZeroMQ messages),
/// a 4-byte big-endian payload length, the payload. Pure.
enum ExecFraming {
    /// `ackSequence` is the number the child acknowledges this packet with
    /// (the header's `ack_sequence`).
    static func encode(_ packet: Packet, ackSequence: UInt64) -> ByteBuffer {
        var out = head(packet, ackSequence: ackSequence)
        out.writeImmutableBuffer(packet.payload)
        return out
    }

    /// Everything of a packet's framing but its payload, which goes out as
    /// it is (one vectored write of both, no copy of the payload).
    static func head(_ packet: Packet, ackSequence: UInt64) -> ByteBuffer {
        let header = PacketHeader.json(packet) { $0.append("ack_sequence", Int64(bitPattern: ackSequence)) }
        var out = ByteBuffer()
        out.reserveCapacity(8 + header.utf8.count)
        out.writeInteger(UInt32(header.utf8.count))
        out.writeString(header)
        out.writeInteger(UInt32(packet.payload.readableBytes))
        return out
    }

    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    /// What a child sends: a packet, or the acknowledgement that it is done
    /// with the input packet of that sequence number (`{"ack": N}`, no payload).
    enum Message {
        case packet(Packet)
        case ack(UInt64)
    }

    /// The whole length of the message `buffer` starts with, once its
    /// header and payload lengths are in it; nil before.
    static func length(of buffer: ByteBuffer, maxSize: Int = 256 << 20) throws(Malformed) -> Int? {
        guard let headerLength = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        guard Int(headerLength) <= 1 << 20 else { throw Malformed(description: "a header of \(headerLength) bytes") }
        let payloadAt = buffer.readerIndex + 4 + Int(headerLength)
        guard let payloadLength = buffer.getInteger(at: payloadAt, as: UInt32.self) else { return nil }
        guard Int(payloadLength) <= maxSize else { throw Malformed(description: "a payload of \(payloadLength) bytes") }
        return 8 + Int(headerLength) + Int(payloadLength)
    }

    /// The next whole message in `buffer`, consuming it; nil when more bytes are needed.
    static func decode(_ buffer: inout ByteBuffer, maxSize: Int = 256 << 20) throws(Malformed) -> Message? {
        guard let length = try length(of: buffer, maxSize: maxSize), buffer.readableBytes >= length else { return nil }
        let headerLength = Int(buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) ?? 0)
        let payloadLength = length - 8 - headerLength
        buffer.moveReaderIndex(forwardBy: 4)
        let header = buffer.readSlice(length: Int(headerLength)) ?? ByteBuffer()
        buffer.moveReaderIndex(forwardBy: 4)
        let payload = buffer.readSlice(length: Int(payloadLength)) ?? ByteBuffer()
        // {"ack": N}, with or without spaces.
        if header.readableBytesView.starts(with: #"{"ack":"#.utf8),
           let text = header.getString(at: header.readerIndex, length: header.readableBytes),
           let number = UInt64(text.dropFirst(7).drop { $0 == " " }.prefix { $0.isNumber }) {
            return .ack(number)
        }
        do {
            return .packet(try PacketHeader.packet(header: header, payload: payload))
        } catch {
            throw Malformed(description: "\(error)")
        }
    }
}

/// Whole messages out of the buffers a pipe delivers, copying as little as
/// it can: a message inside one buffer is a slice of it (no copy); one that
/// spans buffers is copied once, into a buffer of its whole size.
struct ExecFrameReader {
    /// The start of a message whose rest is in later buffers.
    private(set) var partial = ByteBuffer()
    /// What is left of the latest buffer.
    private var chunk = ByteBuffer()
    let maxSize: Int

    init(maxSize: Int = 256 << 20) {
        self.maxSize = maxSize
    }

    /// Whether bytes of an unfinished message are held.
    var isInsideMessage: Bool { partial.readableBytes > 0 || chunk.readableBytes > 0 }

    /// Adds the next buffer read; take its messages with ``next()`` before adding another.
    mutating func add(_ buffer: ByteBuffer) {
        if chunk.readableBytes == 0 { chunk = buffer } else { chunk.writeImmutableBuffer(buffer) }
    }

    /// The next whole message, nil when the next buffer is needed.
    /// Room to reserve for a message the child says is `declared` bytes long,
    /// of which `arrived` are here: what arrived and a pipe's worth more at
    /// most, so an 8-byte length from the child never reserves 256 MiB ahead
    /// of its bytes (the buffer grows as they come).
    static func reservation(_ declared: Int, arrived: Int) -> Int {
        min(declared, arrived + (1 << 20))
    }

    mutating func next() throws(ExecFraming.Malformed) -> ExecFraming.Message? {
        while partial.readableBytes > 0 {
            if let message = try ExecFraming.decode(&partial, maxSize: maxSize) {
                // Its slices keep that storage: the next partial message gets a buffer of its own.
                if partial.readableBytes == 0 { partial = ByteBuffer() }
                return message
            }
            guard chunk.readableBytes > 0 else { return nil }
            // Only the message's own bytes: what follows it is read in place below.
            let length = try ExecFraming.length(of: partial, maxSize: maxSize)
            let missing = length.map { $0 - partial.readableBytes } ?? chunk.readableBytes
            var piece = chunk.readSlice(length: min(missing, chunk.readableBytes)) ?? ByteBuffer()
            partial.reserveCapacity(minimumWritableBytes: Self.reservation(missing, arrived: piece.readableBytes))
            partial.writeBuffer(&piece)
        }
        if let message = try ExecFraming.decode(&chunk, maxSize: maxSize) { return message }
        if chunk.readableBytes > 0 {
            partial = ByteBuffer()
            let declared = try ExecFraming.length(of: chunk, maxSize: maxSize) ?? chunk.readableBytes
            partial.reserveCapacity(Self.reservation(declared, arrived: chunk.readableBytes))
            partial.writeBuffer(&chunk)
        }
        // Not held on to: the pipe's next read goes into a buffer of its own anyway.
        chunk = ByteBuffer()
        return nil
    }
}
