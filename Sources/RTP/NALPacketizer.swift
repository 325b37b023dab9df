public import NIOCore

/// The video codecs whose NAL units travel over RTP here.
public enum RTPVideoCodec: Sendable, Equatable {
    /// RFC 6184, non-interleaved mode: single NAL units, STAP-A, FU-A.
    case h264
    /// RFC 7798 without DONL (sprop-max-don-diff 0): single NAL units, AP, FU.
    case h265

    /// Bytes of the NAL unit header.
    var headerSize: Int { self == .h264 ? 1 : 2 }

    /// The NAL unit type from the unit's first byte.
    func type(_ first: UInt8) -> UInt8 { self == .h264 ? first & 0x1F : (first >> 1) & 0x3F }

    /// H.264 IDR (5); H.265 IRAP (BLA, IDR, CRA: 16...21).
    func isKeyframe(type: UInt8) -> Bool { self == .h264 ? type == 5 : (16...21).contains(type) }
}

/// Cuts one video frame into RTP payloads (RFC 6184 / RFC 7798): a NAL unit
/// that fits goes alone (or, with `aggregate`, with its small neighbours in
/// a STAP-A / AP), a larger one in fragmentation units (FU-A / FU); the last
/// payload of the frame carries the marker bit.
///
/// The frame comes as an MP4 sample gives it (Sources/ISOBMFF: `Fragment.data(of:)`):
/// NAL units each behind a big-endian length of `nalLengthSize` bytes (4 in
/// every avcC/hvcC camflow writes). Parameter sets to send before a
/// keyframe are the caller's to put in the frame (or pass as units first).
public struct NALPacketizer: Sendable {
    /// Limits of the packets made.
    public struct Configuration: Sendable {
        /// The largest RTP packet, its 12-byte fixed header included (no CSRCs, no extension).
        public var mtu: Int
        /// Whether consecutive small NAL units share a STAP-A (H.264) or AP (H.265).
        public var aggregate: Bool
        /// Bytes of each NAL unit's length prefix in a frame: 1, 2 or 4.
        public var nalLengthSize: Int

        public init(mtu: Int = 1400, aggregate: Bool = false, nalLengthSize: Int = 4) {
            self.mtu = mtu
            self.aggregate = aggregate
            self.nalLengthSize = nalLengthSize
        }
    }

    public let codec: RTPVideoCodec
    public let configuration: Configuration

    /// - Throws: for an MTU that leaves no room for a fragment (below 16 bytes, above 65535) or a length size not 1, 2 or 4.
    public init(codec: RTPVideoCodec, configuration: Configuration = Configuration()) throws(RTPError) {
        guard (16...65535).contains(configuration.mtu) else {
            throw RTPError(.invalidArgument, "an MTU of \(configuration.mtu) bytes, 16...65535 allowed")
        }
        guard [1, 2, 4].contains(configuration.nalLengthSize) else {
            throw RTPError(.invalidArgument, "a NAL length size of \(configuration.nalLengthSize), 1, 2 or 4 allowed")
        }
        self.codec = codec
        self.configuration = configuration
    }

    /// RTP payload bytes per packet: the MTU less the 12-byte fixed header.
    public var maxPayloadSize: Int { configuration.mtu - 12 }

    /// The NAL units of a length-prefixed frame, as slices of it.
    /// - Throws: for a length running past the frame or an empty unit.
    public func nalUnits(of frame: ByteBuffer) throws(RTPError) -> [ByteBuffer] {
        var units: [ByteBuffer] = []
        let lengthSize = configuration.nalLengthSize
        var index = frame.readerIndex
        let end = frame.writerIndex
        while index < end {
            guard end - index >= lengthSize else {
                throw RTPError(.truncated, "\(end - index) stray bytes after the last NAL unit", offset: index - frame.readerIndex)
            }
            var length = 0
            for i in 0..<lengthSize { length = length << 8 | Int(frame.getInteger(at: index + i, as: UInt8.self) ?? 0) }
            index += lengthSize
            guard length > 0, length <= end - index else {
                throw RTPError(.invalidPayload, "a NAL unit of \(length) bytes with \(end - index) left in the frame",
                               offset: index - frame.readerIndex)
            }
            units.append(frame.getSlice(at: index, length: length) ?? ByteBuffer())
            index += length
        }
        return units
    }

    /// The payloads of one frame given in length-prefixed form.
    public func packetize(frame: ByteBuffer) throws(RTPError) -> [RTPPayload] {
        try packetize(nalUnits: nalUnits(of: frame))
    }

    /// The payloads of one frame given as its NAL units (each with its NAL header, no length, no start code).
    /// - Throws: for a unit shorter than its NAL header plus one byte.
    public func packetize(nalUnits units: [ByteBuffer]) throws(RTPError) -> [RTPPayload] {
        var out: [RTPPayload] = []
        out.reserveCapacity(units.count)
        var pending: [ByteBuffer] = []
        var pendingSize = codec.headerSize
        for (index, unit) in units.enumerated() {
            guard unit.readableBytes > codec.headerSize else {
                throw RTPError(.invalidPayload, "NAL unit \(index) has \(unit.readableBytes) bytes, no room for data")
            }
            if unit.readableBytes <= maxPayloadSize {
                guard configuration.aggregate else {
                    out.append(RTPPayload(body: unit))
                    continue
                }
                if !pending.isEmpty, pendingSize + 2 + unit.readableBytes > maxPayloadSize {
                    out.append(aggregate(pending))
                    pending.removeAll(keepingCapacity: true)
                    pendingSize = codec.headerSize
                }
                pending.append(unit)
                pendingSize += 2 + unit.readableBytes
            } else {
                if !pending.isEmpty {
                    out.append(aggregate(pending))
                    pending.removeAll(keepingCapacity: true)
                    pendingSize = codec.headerSize
                }
                fragment(unit, into: &out)
            }
        }
        if !pending.isEmpty { out.append(aggregate(pending)) }
        if !out.isEmpty { out[out.count - 1].marker = true }
        return out
    }

    /// One unit alone, or several in a STAP-A / AP (a copy: the units are small).
    private func aggregate(_ units: [ByteBuffer]) -> RTPPayload {
        if units.count == 1 { return RTPPayload(body: units[0]) }
        var body = ByteBuffer()
        body.reserveCapacity(codec.headerSize + units.reduce(0) { $0 + 2 + $1.readableBytes })
        switch codec {
        case .h264:
            // F is set if any unit's is; NRI is the highest of the units'.
            var forbidden: UInt8 = 0
            var nri: UInt8 = 0
            for unit in units {
                let first = unit.getInteger(at: unit.readerIndex, as: UInt8.self) ?? 0
                forbidden |= first & 0x80
                nri = max(nri, first & 0x60)
            }
            body.writeInteger(forbidden | nri | 24)
        case .h265:
            // F ORed; LayerId and TemporalId the lowest of the units'.
            var forbidden: UInt8 = 0
            var layer = UInt16.max
            var tid: UInt8 = 7
            for unit in units {
                let header = unit.getInteger(at: unit.readerIndex, as: UInt16.self) ?? 0
                forbidden |= UInt8(header >> 8) & 0x80
                layer = min(layer, (header >> 3) & 0x3F)
                tid = min(tid, UInt8(header & 0x07))
            }
            body.writeInteger(UInt16(forbidden) << 8 | UInt16(48) << 9 | layer << 3 | UInt16(tid))
        }
        for unit in units {
            body.writeInteger(UInt16(unit.readableBytes))
            body.writeImmutableBuffer(unit)
        }
        return RTPPayload(body: body)
    }

    /// FU-A (H.264) or FU (H.265): the unit's header replaced by the FU's, its data in slices.
    private func fragment(_ unit: ByteBuffer, into out: inout [RTPPayload]) {
        let first = unit.getInteger(at: unit.readerIndex, as: UInt8.self) ?? 0
        let type = codec.type(first)
        let head: UInt32
        let headCount: Int
        switch codec {
        case .h264:
            head = UInt32(first & 0xE0 | 28) << 8 | UInt32(type)
            headCount = 2
        case .h265:
            let second = unit.getInteger(at: unit.readerIndex + 1, as: UInt8.self) ?? 0
            head = UInt32(first & 0x81 | 49 << 1) << 16 | UInt32(second) << 8 | UInt32(type)
            headCount = 3
        }
        let chunk = maxPayloadSize - headCount
        var data = unit.getSlice(at: unit.readerIndex + codec.headerSize, length: unit.readableBytes - codec.headerSize)
            ?? ByteBuffer()
        var isFirst = true
        while data.readableBytes > 0 {
            let length = min(chunk, data.readableBytes)
            let piece = data.readSlice(length: length) ?? ByteBuffer()
            var flags: UInt32 = 0
            if isFirst { flags |= 0x80 }
            if data.readableBytes == 0 { flags |= 0x40 }
            out.append(RTPPayload(head: head | flags, headCount: headCount, body: piece))
            isFirst = false
        }
    }
}
