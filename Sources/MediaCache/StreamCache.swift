public import Camflow
public import NIOCore

/// What a restreamer (the web sink, the RTSP server) keeps of one stream so
/// that a viewer can join at any moment: the latest init segment and the
/// fragments since the latest GOP start. A value type, tested on its own.
public struct StreamCache: Sendable {
    public let name: String
    /// Most bytes of one GOP kept for joiners; past it the cache waits for
    /// the next GOP start (joiners then wait too).
    public let limit: Int
    public private(set) var initSegment: ByteBuffer?
    /// Fragments of the current GOP, from its start.
    public private(set) var gop: [ByteBuffer] = []
    private var gopBytes = 0
    /// The init segment's codecs (RFC 6381), such as `avc1.4D4033, mp4a.40.2`.
    public private(set) var codecs: String?
    public private(set) var width: Int?
    public private(set) var height: Int?
    public private(set) var fragments: UInt64 = 0
    public private(set) var bytes: UInt64 = 0
    public private(set) var gops: UInt64 = 0
    /// Media seconds carried so far (from fragment durations).
    public private(set) var mediaSeconds: Double = 0

    public init(name: String, limit: Int) {
        self.name = name
        self.limit = limit
    }

    /// Whether the stream has video; when it has none, every fragment
    /// starts a GOP (audio-only streams decode from anywhere).
    public var hasVideo: Bool {
        codecs?.split(separator: ",").contains { Self.isVideoCodec($0.trimmingSpaces) } ?? true
    }

    /// Takes an init segment. Returns whether it differs from the last one
    /// (viewers then need it before further fragments).
    public mutating func take(initSegment packet: Packet) -> Bool {
        if let initSegment, initSegment == packet.payload { return false }
        initSegment = packet.payload
        codecs = packet.media?.codec
        width = packet.media?.width
        height = packet.media?.height
        gop.removeAll()
        gopBytes = 0
        return true
    }

    /// Takes a fragment; returns whether it starts a GOP.
    public mutating func take(fragment packet: Packet) -> Bool {
        let starts = startsGOP(packet)
        fragments &+= 1
        bytes &+= UInt64(packet.payload.readableBytes)
        if let media = packet.media, let duration = media.duration, media.timescale > 0 {
            mediaSeconds += Double(duration) / Double(media.timescale)
        }
        if starts {
            gops &+= 1
            gop.removeAll(keepingCapacity: true)
            gopBytes = 0
        }
        if starts || !gop.isEmpty {
            gopBytes += packet.payload.readableBytes
            if gopBytes <= limit {
                gop.append(packet.payload)
            } else {
                gop.removeAll()
            }
        }
        return starts
    }

    /// Whether a fragment begins with a video keyframe (or, without video,
    /// at all).
    public func startsGOP(_ packet: Packet) -> Bool {
        guard packet.media?.keyframe == true else { return false }
        guard hasVideo else { return true }
        return packet.media?.codec.map(Self.isVideoCodec) ?? false
    }

    static func isVideoCodec<S: StringProtocol>(_ codec: S) -> Bool {
        ["avc1", "avc3", "hev1", "hvc1", "av01", "vp09"].contains { codec.hasPrefix($0) }
    }
}

extension StringProtocol {
    var trimmingSpaces: Substring {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return s
    }
}
