public import NIOCore

/// AAC access units in RTP payloads as RFC 3640's AAC-hbr mode carries them
/// (`mode=AAC-hbr; sizelength=13; indexlength=3; indexdeltalength=3`): a
/// 16-bit AU-headers-length, one 16-bit AU header per unit (13-bit size,
/// 3-bit index or index delta, always 0: no interleaving), then the units.
/// Several small units share a packet; a unit larger than a packet is
/// fragmented, each fragment's header giving the whole unit's size.
public struct AACPacketizer: Sendable {
    /// The largest RTP packet, its 12-byte fixed header included.
    public let mtu: Int
    /// RTP timestamp ticks per access unit (1024 for AAC-LC at the sampling rate as clock).
    public let samplesPerUnit: UInt32

    /// The largest unit a 13-bit size field describes.
    public static let maxUnitSize = 8191

    /// - Throws: for an MTU below 32 or above 65535 bytes.
    public init(mtu: Int = 1400, samplesPerUnit: UInt32 = 1024) throws(RTPError) {
        guard (32...65535).contains(mtu) else { throw RTPError(.invalidArgument, "an MTU of \(mtu) bytes, 32...65535 allowed") }
        self.mtu = mtu
        self.samplesPerUnit = samplesPerUnit
    }

    /// The payloads for consecutive access units, the first at the caller's
    /// RTP timestamp; each payload's `timestampOffset` is that of its first
    /// unit. Every packet ends units whole, so each has the marker bit,
    /// except the non-final fragments of a fragmented unit.
    /// - Throws: for an empty unit or one above 8191 bytes.
    public func packetize(accessUnits units: [ByteBuffer]) throws(RTPError) -> [RTPPayload] {
        let room = mtu - 12
        var out: [RTPPayload] = []
        var index = 0
        while index < units.count {
            let size = units[index].readableBytes
            guard size > 0, size <= Self.maxUnitSize else {
                throw RTPError(.tooLarge, "access unit \(index) has \(size) bytes, 1...\(Self.maxUnitSize) allowed")
            }
            let offset = UInt32(truncatingIfNeeded: index) &* samplesPerUnit
            if 4 + size > room {
                var data = units[index]
                while data.readableBytes > 0 {
                    let piece = data.readSlice(length: min(room - 4, data.readableBytes)) ?? ByteBuffer()
                    var body = ByteBuffer()
                    body.reserveCapacity(4 + piece.readableBytes)
                    body.writeInteger(UInt16(16))
                    body.writeInteger(UInt16(size) << 3)
                    body.writeImmutableBuffer(piece)
                    out.append(RTPPayload(body: body, marker: data.readableBytes == 0, timestampOffset: offset))
                }
                index += 1
                continue
            }
            var count = 1
            var total = 4 + size
            // The AU-headers-length counts bits in 16: at most 4095 headers.
            while index + count < units.count, count < 4095 {
                let next = units[index + count].readableBytes
                guard next > 0, next <= Self.maxUnitSize, total + 2 + next <= room else { break }
                total += 2 + next
                count += 1
            }
            var body = ByteBuffer()
            body.reserveCapacity(total)
            body.writeInteger(UInt16(16 * count))
            for unit in units[index..<index + count] { body.writeInteger(UInt16(unit.readableBytes) << 3) }
            for unit in units[index..<index + count] { body.writeImmutableBuffer(unit) }
            out.append(RTPPayload(body: body, marker: true, timestampOffset: offset))
            index += count
        }
        return out
    }
}

/// One AAC access unit read from RTP.
public struct RTPAudioUnit: Sendable, Equatable {
    /// Its RTP timestamp: the packet's plus its index times `samplesPerUnit`.
    public var timestamp: UInt32
    /// The raw AAC frame (a slice of the packet unless it was fragmented).
    public var data: ByteBuffer
}

/// Reads AAC-hbr payloads (RFC 3640) back into access units, with bounds:
/// AU headers must lie inside the payload and the sizes they declare inside
/// its data; a fragmented unit must arrive whole and in sequence, within
/// 8191 bytes; interleaving (a non-zero index) is refused. A broken unit is
/// dropped, reported and counted; the packets after are read normally.
public struct AACDepacketizer: Sendable {
    /// What one packet gave or broke.
    public enum Event: Sendable, Equatable {
        case accessUnit(RTPAudioUnit)
        case dropped(RTPDrop)
    }

    public let samplesPerUnit: UInt32
    public private(set) var statistics = RTPDepacketizerStatistics()
    private var lastSequence: UInt16?
    private var fragment: ByteBuffer?
    private var fragmentSize = 0
    private var fragmentTimestamp: UInt32 = 0
    /// Fragments of a unit already dropped: ignored until the timestamp changes.
    private var damagedTimestamp: UInt32?

    public init(samplesPerUnit: UInt32 = 1024) {
        self.samplesPerUnit = samplesPerUnit
    }

    /// Takes the next packet in sequence order.
    public mutating func push(_ packet: RTPPacket) -> [Event] {
        var events: [Event] = []
        let header = packet.header
        if let last = lastSequence, header.sequenceNumber != last &+ 1 {
            let distance = header.sequenceNumber &- last
            if distance >= 0x8000 || distance == 0 {
                statistics.packetsLate += 1
                return events
            }
            drop(.sequenceGap(missing: Int(distance) - 1), at: header.timestamp, into: &events)
            if fragment != nil, header.timestamp == fragmentTimestamp { damagedTimestamp = header.timestamp }
            fragment = nil
        }
        lastSequence = header.sequenceNumber
        statistics.packets += 1
        if let damaged = damagedTimestamp {
            if damaged == header.timestamp { return events }
            damagedTimestamp = nil
        }
        read(packet.payload, timestamp: header.timestamp, marker: header.marker, into: &events)
        return events
    }

    private mutating func drop(_ reason: RTPDropReason, at timestamp: UInt32, into events: inout [Event]) {
        statistics.framesDropped += 1
        events.append(.dropped(RTPDrop(reason: reason, timestamp: timestamp)))
    }

    private mutating func read(_ payload: ByteBuffer, timestamp: UInt32, marker: Bool, into events: inout [Event]) {
        let start = payload.readerIndex
        let count = payload.readableBytes
        func malformed(_ message: String, _ offset: Int) {
            fragment = nil
            drop(.malformed(RTPError(.invalidPayload, message, offset: offset)), at: timestamp, into: &events)
        }
        guard count >= 2 else { return malformed("a payload of \(count) bytes", 0) }
        let bits = Int(payload.getInteger(at: start, as: UInt16.self) ?? 0)
        guard bits > 0, bits % 16 == 0 else { return malformed("AU headers of \(bits) bits, a multiple of 16 expected", 0) }
        let headerBytes = bits / 8
        guard headerBytes <= count - 2 else {
            return malformed("AU headers of \(headerBytes) bytes with \(count - 2) in the payload", 0)
        }
        let unitCount = headerBytes / 2
        var sizes: [Int] = []
        sizes.reserveCapacity(unitCount)
        for index in 0..<unitCount {
            let field = payload.getInteger(at: start + 2 + 2 * index, as: UInt16.self) ?? 0
            guard field & 0x7 == 0 else {
                fragment = nil
                return drop(.unsupportedPacketType(UInt8(field & 0x7)), at: timestamp, into: &events)
            }
            sizes.append(Int(field >> 3))
        }
        let dataAt = 2 + headerBytes
        let available = count - dataAt
        if var unit = fragment {
            // Only the next fragment of the same unit may follow one.
            guard unitCount == 1, timestamp == fragmentTimestamp, sizes[0] == fragmentSize else {
                fragment = nil
                drop(.fragmentWithoutEnd, at: fragmentTimestamp, into: &events)
                return read(payload, timestamp: timestamp, marker: marker, into: &events)
            }
            guard available <= fragmentSize - unit.readableBytes else {
                return malformed("fragments of \(unit.readableBytes + available) bytes for a unit of \(fragmentSize)", dataAt)
            }
            fragment = nil
            unit.writeImmutableBuffer(payload.getSlice(at: start + dataAt, length: available) ?? ByteBuffer())
            if unit.readableBytes == fragmentSize {
                statistics.frames += 1
                events.append(.accessUnit(RTPAudioUnit(timestamp: timestamp, data: unit)))
            } else if marker {
                drop(.fragmentWithoutEnd, at: timestamp, into: &events)
            } else {
                fragment = unit
            }
            return
        }
        if unitCount == 1, sizes[0] > available {
            guard !marker, sizes[0] > 0 else {
                return malformed("a unit of \(sizes[0]) bytes with \(available) in the payload", dataAt)
            }
            var unit = ByteBuffer()
            unit.reserveCapacity(sizes[0])
            unit.writeImmutableBuffer(payload.getSlice(at: start + dataAt, length: available) ?? ByteBuffer())
            fragment = unit
            fragmentSize = sizes[0]
            fragmentTimestamp = timestamp
            return
        }
        // All sizes checked before any unit goes out: a packet is taken whole or not at all.
        var end = dataAt
        for (index, size) in sizes.enumerated() {
            guard size > 0, size <= count - end else {
                return malformed("unit \(index) of \(size) bytes with \(count - end) left", end)
            }
            end += size
        }
        var offset = dataAt
        for (index, size) in sizes.enumerated() {
            statistics.frames += 1
            let stamp = timestamp &+ UInt32(truncatingIfNeeded: index) &* samplesPerUnit
            events.append(.accessUnit(RTPAudioUnit(timestamp: stamp, data: payload.getSlice(at: start + offset, length: size)
                ?? ByteBuffer())))
            offset += size
        }
    }
}
