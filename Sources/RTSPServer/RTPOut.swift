import NIOCore

/// One RTP packet as every client of a stream is sent it: made once per
/// stream, shared (the bytes are never copied per client on the usual path).
struct RTPOut: Sendable {
    /// The track's index in the stream's SDP (`trackID=N`).
    var track: Int
    /// `$`, channel 2·track, the length, then the RTP packet: what a TCP
    /// client on the default channels is written as it is.
    var framed: ByteBuffer
    /// The first packet of a keyframe (its parameter sets): a client may start here.
    var startsGOP: Bool
    var sequence: UInt16
    var timestamp: UInt32
    /// The sample's presentation time on the stream's timeline (ns), the same clock for every track.
    var time: Int64

    /// Bytes on the wire over TCP.
    var size: Int { framed.readableBytes }

    /// The RTP packet alone (UDP), a slice.
    var rtp: ByteBuffer { framed.getSlice(at: framed.readerIndex + 4, length: framed.readableBytes - 4) ?? ByteBuffer() }

    /// The packet framed for `channel` (a client that chose other channels): a copy unless it is the default.
    func framed(channel: UInt8) -> ByteBuffer {
        guard channel != UInt8(truncatingIfNeeded: 2 * track) else { return framed }
        var copy = framed
        copy.setInteger(channel, at: copy.readerIndex + 1)
        return copy
    }
}

/// One fragment's packets for every client: each alone, and all of them end to end in one buffer.
struct RTPBatch: Sendable {
    var packets: [RTPOut]
    /// The packets' framed bytes in order, one storage (the packets are slices of it).
    var joined: ByteBuffer
}
