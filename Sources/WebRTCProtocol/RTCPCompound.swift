public import NIOCore

/// Reads and writes RTCP datagrams (after SRTCP decryption): a compound
/// packet (RFC 3550 §6.1) or a reduced-size one (RFC 5506: any packet
/// first, one alone). Every length is checked against the datagram; a
/// datagram with any malformed packet is refused whole.
public enum RTCPCompound {
    /// More than any browser sends in one datagram (about 1200 bytes).
    public static let maxBytes = 16384
    public static let maxPackets = 64

    /// - Throws: ``WebRTCWireError`` (truncated, bad version, bad length or padding, too many packets); never traps.
    public static func parse(_ datagram: ByteBuffer) throws(WebRTCWireError) -> [RTCPPacket] {
        let count = datagram.readableBytes
        let base = datagram.readerIndex
        guard count >= 4 else { throw WebRTCWireError(.truncated, "an RTCP datagram of \(count) bytes, at least 4 needed") }
        guard count <= maxBytes else { throw WebRTCWireError(.tooLarge, "an RTCP datagram of \(count) bytes, at most \(maxBytes)") }
        func u8(_ at: Int) -> UInt8 { datagram.getInteger(at: base + at, as: UInt8.self) ?? 0 }
        func u16(_ at: Int) -> UInt16 { datagram.getInteger(at: base + at, as: UInt16.self) ?? 0 }
        func u32(_ at: Int) -> UInt32 { datagram.getInteger(at: base + at, as: UInt32.self) ?? 0 }
        func reports(_ at: Int, _ number: Int) -> [RTCPReportBlock] {
            (0..<number).map { index in
                let block = at + 24 * index
                let lost = u32(block + 4) & 0x00FF_FFFF
                return RTCPReportBlock(ssrc: u32(block), fractionLost: u8(block + 4),
                                       cumulativeLost: Int32(bitPattern: lost << 8) >> 8, highestSequence: u32(block + 8),
                                       jitter: u32(block + 12), lastSenderReport: u32(block + 16),
                                       delaySinceLastSenderReport: u32(block + 20))
            }
        }
        var packets: [RTCPPacket] = []
        var offset = 0
        while offset < count {
            guard packets.count < maxPackets else {
                throw WebRTCWireError(.tooLarge, "more than \(maxPackets) RTCP packets in one datagram", offset: offset)
            }
            guard count - offset >= 4 else { throw WebRTCWireError(.truncated, "an RTCP header cut short", offset: offset) }
            let first = u8(offset)
            guard first >> 6 == 2 else { throw WebRTCWireError(.badHeader, "RTCP version \(first >> 6), only 2 is read", offset: offset) }
            let length = 4 * (Int(u16(offset + 2)) + 1)
            guard length <= count - offset else {
                throw WebRTCWireError(.badLength, "an RTCP packet of \(length) bytes, \(count - offset) left", offset: offset)
            }
            var end = offset + length
            if first & 0x20 != 0 {
                // RFC 3550 §6.4.1: only the last packet of a compound may be padded.
                let padding = Int(u8(end - 1))
                guard end == count, padding >= 1, padding <= length - 4 else {
                    throw WebRTCWireError(.badLength, "RTCP padding of \(padding) bytes where it cannot be", offset: end - 1)
                }
                end -= padding
            }
            let body = end - offset
            let countField = Int(first & 0x1F)
            let type = u8(offset + 1)
            func need(_ bytes: Int, _ what: String) throws(WebRTCWireError) {
                guard body >= bytes else {
                    throw WebRTCWireError(.badLength, "\(what) needs \(bytes) bytes, the packet has \(body)", offset: offset)
                }
            }
            switch (type, countField) {
            case (RTCPPacket.senderReportType, _):
                try need(28 + 24 * countField, "a sender report with \(countField) blocks")
                packets.append(.senderReport(RTCPSenderReport(
                    ssrc: u32(offset + 4), ntpTimestamp: UInt64(u32(offset + 8)) << 32 | UInt64(u32(offset + 12)),
                    rtpTimestamp: u32(offset + 16), packetCount: u32(offset + 20), octetCount: u32(offset + 24),
                    reports: reports(offset + 28, countField))))
            case (RTCPPacket.receiverReportType, _):
                try need(8 + 24 * countField, "a receiver report with \(countField) blocks")
                packets.append(.receiverReport(ssrc: u32(offset + 4), reports: reports(offset + 8, countField)))
            case (RTCPPacket.byeType, _):
                try need(4 + 4 * countField, "a BYE with \(countField) sources")
                packets.append(.bye(ssrcs: (0..<countField).map { u32(offset + 4 + 4 * $0) }))
            case (RTCPPacket.transportFeedbackType, 1):
                try need(16, "a generic NACK")
                guard (body - 12) % 4 == 0 else {
                    throw WebRTCWireError(.badLength, "a generic NACK's entries are not whole 4-byte words", offset: offset)
                }
                let entries = (0..<(body - 12) / 4).map { RTCPNACKEntry(packetID: u16(offset + 12 + 4 * $0), lostBitmask: u16(offset + 14 + 4 * $0)) }
                packets.append(.nack(senderSSRC: u32(offset + 4), mediaSSRC: u32(offset + 8), entries: entries))
            case (RTCPPacket.payloadFeedbackType, 1):
                try need(12, "a PLI")
                packets.append(.pictureLoss(senderSSRC: u32(offset + 4), mediaSSRC: u32(offset + 8)))
            case (RTCPPacket.payloadFeedbackType, 4):
                try need(20, "a FIR")
                guard (body - 12) % 8 == 0 else {
                    throw WebRTCWireError(.badLength, "a FIR's entries are not whole 8-byte pairs", offset: offset)
                }
                let entries = (0..<(body - 12) / 8).map { RTCPFIREntry(ssrc: u32(offset + 12 + 8 * $0), sequenceNumber: u8(offset + 16 + 8 * $0)) }
                packets.append(.fullIntraRequest(senderSSRC: u32(offset + 4), entries: entries))
            default:
                packets.append(.other(packetType: type, format: UInt8(countField)))
            }
            offset += length
        }
        return packets
    }
}

extension RTCPPacket {
    /// Appends this packet (never padded).
    /// - Throws: `.invalidArgument` for `.other`, more than 31 report blocks or sources, or no NACK/FIR entry;
    ///   `.tooLarge` past RTCP's 16-bit length.
    public func write(to buffer: inout ByteBuffer) throws(WebRTCWireError) {
        func header(_ count: Int, _ type: UInt8, words: Int) throws(WebRTCWireError) {
            guard count <= 31 else { throw WebRTCWireError(.invalidArgument, "\(count) report blocks or sources, at most 31") }
            guard words <= 0xFFFF else { throw WebRTCWireError(.tooLarge, "an RTCP packet of \(4 * (words + 1)) bytes") }
            buffer.writeInteger(UInt8(0x80 | count))
            buffer.writeInteger(type)
            buffer.writeInteger(UInt16(words))
        }
        func blocks(_ reports: [RTCPReportBlock]) {
            for block in reports {
                buffer.writeInteger(block.ssrc)
                buffer.writeInteger(UInt32(block.fractionLost) << 24 | UInt32(bitPattern: block.cumulativeLost) & 0x00FF_FFFF)
                buffer.writeInteger(block.highestSequence)
                buffer.writeInteger(block.jitter)
                buffer.writeInteger(block.lastSenderReport)
                buffer.writeInteger(block.delaySinceLastSenderReport)
            }
        }
        switch self {
        case .senderReport(let report):
            try header(report.reports.count, Self.senderReportType, words: 6 + 6 * report.reports.count)
            buffer.writeInteger(report.ssrc)
            buffer.writeInteger(report.ntpTimestamp)
            buffer.writeInteger(report.rtpTimestamp)
            buffer.writeInteger(report.packetCount)
            buffer.writeInteger(report.octetCount)
            blocks(report.reports)
        case .receiverReport(let ssrc, let reports):
            try header(reports.count, Self.receiverReportType, words: 1 + 6 * reports.count)
            buffer.writeInteger(ssrc)
            blocks(reports)
        case .bye(let ssrcs):
            try header(ssrcs.count, Self.byeType, words: ssrcs.count)
            for ssrc in ssrcs { buffer.writeInteger(ssrc) }
        case .nack(let sender, let media, let entries):
            guard !entries.isEmpty else { throw WebRTCWireError(.invalidArgument, "a generic NACK without entries") }
            try header(1, Self.transportFeedbackType, words: 2 + entries.count)
            buffer.writeInteger(sender)
            buffer.writeInteger(media)
            for entry in entries {
                buffer.writeInteger(entry.packetID)
                buffer.writeInteger(entry.lostBitmask)
            }
        case .pictureLoss(let sender, let media):
            try header(1, Self.payloadFeedbackType, words: 2)
            buffer.writeInteger(sender)
            buffer.writeInteger(media)
        case .fullIntraRequest(let sender, let entries):
            guard !entries.isEmpty else { throw WebRTCWireError(.invalidArgument, "a FIR without entries") }
            try header(4, Self.payloadFeedbackType, words: 2 + 2 * entries.count)
            buffer.writeInteger(sender)
            buffer.writeInteger(UInt32(0))
            for entry in entries {
                buffer.writeInteger(entry.ssrc)
                buffer.writeInteger(UInt32(entry.sequenceNumber) << 24)
            }
        case .other(let type, _):
            throw WebRTCWireError(.invalidArgument, "RTCP packet type \(type) is read, never written")
        }
    }
}
