public import NIOCore

/// Why a frame (or the packets of one) was thrown away. After any of these
/// the depacketizer awaits the next keyframe.
public enum RTPDropReason: Sendable, Equatable {
    /// Packets missing before this one (how many, by sequence number).
    case sequenceGap(missing: Int)
    /// A fragment continuing a unit whose start never came.
    case fragmentWithoutStart
    /// A fragmented unit left unfinished: a new start, the frame's end or a new timestamp came first.
    case fragmentWithoutEnd
    /// The frame grew past `maxFrameSize`.
    case frameTooLarge(limit: Int)
    /// The frame has more NAL units (or AUs) than `maxUnitsPerFrame`.
    case tooManyUnits(limit: Int)
    /// A packet type this receiver does not take (STAP-B, MTAP, FU-B, PACI, reserved).
    case unsupportedPacketType(UInt8)
    /// A payload whose structure is wrong.
    case malformed(RTPError)
}

/// A frame dropped: why, and the RTP timestamp of the packet that showed it.
public struct RTPDrop: Sendable, Equatable {
    public var reason: RTPDropReason
    public var timestamp: UInt32
}

/// One whole access unit (a video frame) rebuilt from RTP.
public struct RTPAccessUnit: Sendable, Equatable {
    /// The RTP timestamp shared by the frame's packets.
    public var timestamp: UInt32
    /// The NAL units in order, each with its NAL header; single units and
    /// aggregated ones are slices of the packets, fragmented ones rebuilt.
    public var nalUnits: [ByteBuffer]
    /// Whether a unit is an H.264 IDR or an H.265 IRAP picture.
    public var isKeyframe: Bool

    /// Bytes of all units.
    public var size: Int { nalUnits.reduce(0) { $0 + $1.readableBytes } }

    /// The frame as an MP4 sample: each unit behind its 4-byte big-endian length.
    public func lengthPrefixed() -> ByteBuffer {
        var out = ByteBuffer()
        out.reserveCapacity(size + 4 * nalUnits.count)
        for unit in nalUnits {
            out.writeInteger(UInt32(unit.readableBytes))
            out.writeImmutableBuffer(unit)
        }
        return out
    }
}

/// Counters a depacketizer keeps: what came out, what it threw away.
public struct RTPDepacketizerStatistics: Sendable, Equatable {
    public var packets = 0
    public var frames = 0
    /// Frames dropped (each also reported as a ``RTPDrop``).
    public var framesDropped = 0
    /// Whole frames passed over while awaiting a keyframe.
    public var framesSkippedAwaitingKeyframe = 0
    /// Packets older than the last one (late or duplicated): ignored.
    public var packetsLate = 0
    public init() {}
}

/// Rebuilds video frames from RTP packets in sequence order (RFC 6184
/// non-interleaved mode: single NAL units, STAP-A, FU-A; RFC 7798 without
/// DONL: single NAL units, AP, FU). A frame ends at the marker bit or when
/// the timestamp changes. Everything is bounded: a frame larger than
/// `maxFrameSize`, a fragment without its start or end, a sequence gap
/// inside a frame: the frame is dropped, reported and counted, and frames
/// are passed over until the next keyframe.
public struct NALDepacketizer: Sendable {
    /// Bounds on what one frame may hold.
    public struct Configuration: Sendable {
        /// Bytes of all NAL units of one frame, fragments being rebuilt included.
        public var maxFrameSize: Int
        /// NAL units in one frame.
        public var maxUnitsPerFrame: Int
        /// Whether the first frame given out must be a keyframe (a decoder cannot start elsewhere).
        public var startWithKeyframe: Bool

        public init(maxFrameSize: Int = 8 << 20, maxUnitsPerFrame: Int = 4096, startWithKeyframe: Bool = true) {
            self.maxFrameSize = maxFrameSize
            self.maxUnitsPerFrame = maxUnitsPerFrame
            self.startWithKeyframe = startWithKeyframe
        }
    }

    /// What one packet completed or broke.
    public enum Event: Sendable, Equatable {
        case accessUnit(RTPAccessUnit)
        case dropped(RTPDrop)
    }

    public let codec: RTPVideoCodec
    public let configuration: Configuration
    public private(set) var statistics = RTPDepacketizerStatistics()
    /// Whether frames are being passed over until a keyframe.
    public private(set) var awaitingKeyframe: Bool

    private var lastSequence: UInt16?
    private var timestamp: UInt32 = 0
    private var inFrame = false
    /// The frame in progress was dropped: the rest of its packets are ignored.
    private var damaged = false
    private var units: [ByteBuffer] = []
    private var bytes = 0
    private var keyframe = false
    private var fragment: ByteBuffer?

    public init(codec: RTPVideoCodec, configuration: Configuration = Configuration()) {
        self.codec = codec
        self.configuration = configuration
        awaitingKeyframe = configuration.startWithKeyframe
    }

    /// Takes the next packet (in sequence order: see ``RTPSequenceTracker``).
    public mutating func push(_ packet: RTPPacket) -> [Event] {
        var events: [Event] = []
        let header = packet.header
        if let last = lastSequence, header.sequenceNumber != last &+ 1 {
            let distance = header.sequenceNumber &- last
            if distance >= 0x8000 || distance == 0 {
                statistics.packetsLate += 1
                return events
            }
            // The lost packets belong to this frame, to its successor, or to
            // frames in between: whichever, the decoder waits for a keyframe.
            let sameFrame = inFrame && header.timestamp == timestamp
            drop(.sequenceGap(missing: Int(distance) - 1), at: header.timestamp, into: &events)
            if !sameFrame { reset() }
        }
        lastSequence = header.sequenceNumber
        statistics.packets += 1
        if inFrame, header.timestamp != timestamp { finish(into: &events) }
        if !inFrame {
            inFrame = true
            timestamp = header.timestamp
        }
        if !damaged { take(packet.payload, into: &events) }
        if header.marker { finish(into: &events) }
        return events
    }

    /// Ends the frame in progress (end of stream, or a timeout of the caller's).
    public mutating func flush() -> [Event] {
        var events: [Event] = []
        if inFrame { finish(into: &events) }
        return events
    }

    private mutating func reset() {
        inFrame = false
        damaged = false
        units.removeAll(keepingCapacity: true)
        bytes = 0
        keyframe = false
        fragment = nil
    }

    private mutating func drop(_ reason: RTPDropReason, at timestamp: UInt32, into events: inout [Event]) {
        statistics.framesDropped += 1
        events.append(.dropped(RTPDrop(reason: reason, timestamp: timestamp)))
        units.removeAll(keepingCapacity: true)
        bytes = 0
        keyframe = false
        fragment = nil
        damaged = true
        awaitingKeyframe = true
    }

    private mutating func finish(into events: inout [Event]) {
        if !damaged, fragment != nil { drop(.fragmentWithoutEnd, at: timestamp, into: &events) }
        if !damaged, !units.isEmpty {
            if awaitingKeyframe, !keyframe {
                statistics.framesSkippedAwaitingKeyframe += 1
            } else {
                awaitingKeyframe = false
                statistics.frames += 1
                events.append(.accessUnit(RTPAccessUnit(timestamp: timestamp, nalUnits: units, isKeyframe: keyframe)))
                units = []
            }
        }
        reset()
    }

    private mutating func add(_ unit: ByteBuffer, into events: inout [Event]) {
        guard units.count < configuration.maxUnitsPerFrame else {
            return drop(.tooManyUnits(limit: configuration.maxUnitsPerFrame), at: timestamp, into: &events)
        }
        guard unit.readableBytes <= configuration.maxFrameSize - bytes else {
            return drop(.frameTooLarge(limit: configuration.maxFrameSize), at: timestamp, into: &events)
        }
        bytes += unit.readableBytes
        if codec.isKeyframe(type: codec.type(unit.getInteger(at: unit.readerIndex, as: UInt8.self) ?? 0)) {
            keyframe = true
        }
        units.append(unit)
    }

    private mutating func take(_ payload: ByteBuffer, into events: inout [Event]) {
        let start = payload.readerIndex
        let count = payload.readableBytes
        guard count > codec.headerSize else {
            return drop(.malformed(RTPError(.truncated, "a payload of \(count) bytes")), at: timestamp, into: &events)
        }
        let first = payload.getInteger(at: start, as: UInt8.self) ?? 0
        let type = codec.type(first)
        let (aggregateType, fragmentType, lastSingle): (UInt8, UInt8, UInt8) = codec == .h264 ? (24, 28, 23) : (48, 49, 47)
        if type >= 1 || codec == .h265, type <= lastSingle {
            if fragment != nil { return drop(.fragmentWithoutEnd, at: timestamp, into: &events) }
            return add(payload, into: &events)
        }
        if type == aggregateType {
            if fragment != nil { return drop(.fragmentWithoutEnd, at: timestamp, into: &events) }
            var offset = codec.headerSize
            while offset < count {
                guard count - offset >= 2 else {
                    return drop(.malformed(RTPError(.truncated, "an aggregation unit's size field cut short", offset: offset)),
                                at: timestamp, into: &events)
                }
                let size = Int(payload.getInteger(at: start + offset, as: UInt16.self) ?? 0)
                offset += 2
                guard size > codec.headerSize, size <= count - offset else {
                    return drop(.malformed(RTPError(.invalidPayload,
                                                    "an aggregated NAL unit of \(size) bytes with \(count - offset) left",
                                                    offset: offset - 2)), at: timestamp, into: &events)
                }
                add(payload.getSlice(at: start + offset, length: size) ?? ByteBuffer(), into: &events)
                if damaged { return }
                offset += size
            }
            return
        }
        if type == fragmentType {
            let fuHeaderAt = codec.headerSize
            guard count > fuHeaderAt + 1 else {
                return drop(.malformed(RTPError(.truncated, "a fragment of \(count) bytes")), at: timestamp, into: &events)
            }
            let fuHeader = payload.getInteger(at: start + fuHeaderAt, as: UInt8.self) ?? 0
            let isStart = fuHeader & 0x80 != 0
            let isEnd = fuHeader & 0x40 != 0
            let dataAt = fuHeaderAt + 1
            let dataLength = count - dataAt
            if isStart {
                if fragment != nil { return drop(.fragmentWithoutEnd, at: timestamp, into: &events) }
                guard codec.headerSize + dataLength <= configuration.maxFrameSize - bytes else {
                    return drop(.frameTooLarge(limit: configuration.maxFrameSize), at: timestamp, into: &events)
                }
                var unit = ByteBuffer()
                unit.reserveCapacity(codec.headerSize + dataLength)
                switch codec {
                case .h264:
                    unit.writeInteger(first & 0xE0 | fuHeader & 0x1F)
                case .h265:
                    unit.writeInteger(first & 0x81 | (fuHeader & 0x3F) << 1)
                    unit.writeInteger(payload.getInteger(at: start + 1, as: UInt8.self) ?? 0)
                }
                unit.writeImmutableBuffer(payload.getSlice(at: start + dataAt, length: dataLength) ?? ByteBuffer())
                fragment = unit
            } else {
                guard var unit = fragment else { return drop(.fragmentWithoutStart, at: timestamp, into: &events) }
                guard dataLength <= configuration.maxFrameSize - bytes - unit.readableBytes else {
                    return drop(.frameTooLarge(limit: configuration.maxFrameSize), at: timestamp, into: &events)
                }
                // Released first so that the append does not copy a shared buffer.
                fragment = nil
                unit.writeImmutableBuffer(payload.getSlice(at: start + dataAt, length: dataLength) ?? ByteBuffer())
                fragment = unit
            }
            if isEnd, let unit = fragment {
                fragment = nil
                add(unit, into: &events)
            }
            return
        }
        drop(.unsupportedPacketType(type), at: timestamp, into: &events)
    }
}
