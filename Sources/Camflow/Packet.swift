public import NIOCore

/// What a packet holds; nodes declare which kinds they accept and emit.
public enum PacketKind: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// A raw chunk of a byte stream, cut anywhere (a WebSocket message, a file read).
    case bytes
    /// An MP4 init segment (ftyp + moov).
    case initSegment
    /// One MP4 fragment (moof + mdat).
    case fragment
    /// One access unit (audio or video sample).
    case frame
    /// Structured data: statistics, connection state, errors.
    case event

    /// The name used in YAML, topics and logs (`init` for ``initSegment``).
    public var name: String {
        switch self {
        case .bytes: "bytes"
        case .initSegment: "init"
        case .fragment: "fragment"
        case .frame: "frame"
        case .event: "event"
        }
    }

    public var description: String { name }

    /// Looks a kind up by its YAML name.
    public init?(name: String) {
        guard let kind = PacketKind.allCases.first(where: { $0.name == name }) else { return nil }
        self = kind
    }
}

/// A set of packet kinds, used to check at load time that connected nodes fit.
public struct PacketKinds: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The set holding exactly `kind`.
    public init(_ kind: PacketKind) { self.rawValue = 1 << kind.rawValue }

    public static let bytes = PacketKinds(.bytes)
    public static let initSegment = PacketKinds(.initSegment)
    public static let fragment = PacketKinds(.fragment)
    public static let frame = PacketKinds(.frame)
    public static let event = PacketKinds(.event)
    /// Every kind.
    public static let all: PacketKinds = [.bytes, .initSegment, .fragment, .frame, .event]

    /// Whether `kind` is in the set.
    @inlinable
    public func contains(_ kind: PacketKind) -> Bool { rawValue & (1 << kind.rawValue) != 0 }

    /// The kinds in declaration order.
    public var kinds: [PacketKind] { PacketKind.allCases.filter { contains($0) } }

    public var description: String {
        self == .all ? "any" : kinds.map(\.name).joined(separator: ", ")
    }
}

/// What a track carries: the MP4 handler (`vide`, `soun`) in words.
public enum TrackKind: String, Sendable, CaseIterable {
    case video
    case audio
}

/// Media facts about a packet, where the node that made it knows them.
public struct MediaInfo: Sendable, Equatable {
    /// Track id inside the MP4 stream.
    public var track: UInt32
    /// What the track carries; nil when unknown (another handler, or a
    /// packet from a peer that did not say).
    public var trackKind: TrackKind?
    /// RFC 6381 codec string, such as `avc1.4D0033` or `mp4a.40.2`.
    public var codec: String?
    /// Units per second of `dts`, `pts` and `duration`.
    public var timescale: UInt32
    /// Decode timestamp in `timescale` units.
    public var dts: Int64?
    /// Presentation timestamp in `timescale` units.
    public var pts: Int64?
    /// Duration in `timescale` units.
    public var duration: Int64?
    /// Whether decoding can start here. `nil` when unknown.
    public var keyframe: Bool?
    /// Picture size for video.
    public var width: Int?
    public var height: Int?

    public init(
        track: UInt32 = 0, codec: String? = nil, timescale: UInt32 = 0,
        dts: Int64? = nil, pts: Int64? = nil, duration: Int64? = nil,
        keyframe: Bool? = nil, width: Int? = nil, height: Int? = nil, trackKind: TrackKind? = nil
    ) {
        self.track = track
        self.trackKind = trackKind
        self.codec = codec
        self.timescale = timescale
        self.dts = dts
        self.pts = pts
        self.duration = duration
        self.keyframe = keyframe
        self.width = width
        self.height = height
    }

    /// `dts` in nanoseconds, when both it and the timescale are known.
    public var dtsNanoseconds: Int64? {
        guard let dts, timescale > 0 else { return nil }
        // A peer may send any dts: out of Int64's range in nanoseconds it is
        // clamped, never converted with a trap.
        let nanoseconds = (Double(dts) / Double(timescale) * 1e9).rounded()
        return Int64(exactly: nanoseconds) ?? (nanoseconds < 0 ? .min : .max)
    }
}

/// A value carried in an event packet.
public enum EventValue: Sendable, Equatable, CustomStringConvertible {
    case string(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)

    public var description: String {
        switch self {
        case .string(let s): s
        case .int(let i): String(i)
        case .double(let d): d.formatted(maxFractionDigits: 3)
        case .bool(let b): b ? "true" : "false"
        }
    }
}

/// Structured data of an `event` packet: a name and ordered fields.
public struct Event: Sendable, Equatable {
    /// What happened: `stats`, `connected`, `disconnected`, `error`, ...
    public var name: String
    /// Ordered so logs and JSON read the same way every time.
    public var fields: [(key: String, value: EventValue)]

    public init(_ name: String, _ fields: [(key: String, value: EventValue)] = []) {
        self.name = name
        self.fields = fields
    }

    /// The value of field `key`, if present.
    public subscript(key: String) -> EventValue? {
        fields.first(where: { $0.key == key })?.value
    }

    public static func == (lhs: Event, rhs: Event) -> Bool {
        lhs.name == rhs.name && lhs.fields.elementsEqual(rhs.fields, by: { $0.key == $1.key && $0.value == $1.value })
    }
}

/// The unit that flows along edges. A value: copying a packet shares its payload
/// bytes (a `ByteBuffer` is copy-on-write), it never copies them.
public struct Packet: Sendable {
    public var kind: PacketKind
    /// Logical stream name; by default the id of the source node.
    public var stream: String
    /// Per-stream counter set by the node that made the packet.
    public var sequence: UInt64
    /// The bytes. Slices of a larger buffer share its storage.
    public var payload: ByteBuffer
    /// Monotonic clock reading (ns) when the bytes arrived at camflow.
    public var receivedAt: UInt64
    /// Set on the first packet after a gap (reconnect, dropped bytes):
    /// stateful consumers such as parsers reset.
    public var discontinuity: Bool
    /// Media fields, where known.
    public var media: MediaInfo?
    /// Structured data for `event` packets.
    public var event: Event?

    public init(
        kind: PacketKind, stream: String, sequence: UInt64 = 0,
        payload: ByteBuffer = ByteBuffer(), receivedAt: UInt64 = MonotonicClock.now(),
        discontinuity: Bool = false, media: MediaInfo? = nil, event: Event? = nil
    ) {
        self.kind = kind
        self.stream = stream
        self.sequence = sequence
        self.payload = payload
        self.receivedAt = receivedAt
        self.discontinuity = discontinuity
        self.media = media
        self.event = event
    }

    /// An event packet with no payload.
    public static func event(
        _ event: Event, stream: String, sequence: UInt64 = 0, receivedAt: UInt64 = MonotonicClock.now()
    ) -> Packet {
        Packet(kind: .event, stream: stream, sequence: sequence, receivedAt: receivedAt, event: event)
    }

    /// Whether the packet is known to start a decodable group of pictures.
    public var isKeyframe: Bool { media?.keyframe == true }
}
