public import NIOCore

/// A stream's video as WebRTC sends it, from its init segment: the codec,
/// the parameter sets sent before every keyframe (the avcC's), and how its
/// samples are framed.
public struct WebRTCVideoTrack: Sendable, Equatable {
    public enum Codec: Sendable, Equatable { case h264, h265 }

    public var codec: Codec
    /// SPS/PPS (H.264; VPS too for H.265), NAL units without length prefix.
    public var parameterSets: [ByteBuffer]
    /// Bytes of each NAL unit's length prefix in a sample (1, 2 or 4).
    public var nalLengthSize: Int
    public var width: Int?
    public var height: Int?
    /// Set once a sample's presentation time differed from its decode time:
    /// browsers' WebRTC decoders do not take B-frames.
    public var hasBFrames: Bool

    public init(codec: Codec, parameterSets: [ByteBuffer], nalLengthSize: Int, width: Int?, height: Int?, hasBFrames: Bool = false) {
        self.codec = codec
        self.parameterSets = parameterSets
        self.nalLengthSize = nalLengthSize
        self.width = width
        self.height = height
        self.hasBFrames = hasBFrames
    }

    /// The first SPS's profile_idc, constraint flags and level_idc (H.264), for the answer's payload type.
    var profileBytes: (UInt8, UInt8, UInt8)? {
        guard codec == .h264 else { return nil }
        for set in parameterSets {
            guard set.readableBytes >= 4, let bytes = set.getBytes(at: set.readerIndex, length: 4), bytes[0] & 0x1F == 7 else { continue }
            return (bytes[1], bytes[2], bytes[3])
        }
        return nil
    }
}

/// One video frame (an MP4 sample) for WebRTC viewers.
public struct WebRTCVideoFrame: Sendable {
    /// NAL units behind length prefixes of the track's `nalLengthSize`.
    public var sample: ByteBuffer
    public var isKeyframe: Bool
    /// Decode time on the stream's continuous timeline, nanoseconds: the RTP
    /// timestamp (90 kHz) and the pacing of a fragment's frames come from it.
    public var time: Int64
    /// When the frame's fragment arrived (`MonotonicClock` ns), for the time to its send
    /// (``WebRTCEndpoint/Configuration/frameSent``); 0 when not measured (a fragment's
    /// later frames, held back on purpose by the pacing).
    public var receivedAt: UInt64
    /// The same frame's decode time as the source gave it (before the
    /// timeline was made continuous), nanoseconds: the answer's media clock
    /// (`a=x-camflow-media-clock`) ties RTP timestamps to it.
    public var sourceTime: Int64

    public init(sample: ByteBuffer, isKeyframe: Bool, time: Int64, receivedAt: UInt64 = 0, sourceTime: Int64? = nil) {
        self.sample = sample
        self.isKeyframe = isKeyframe
        self.time = time
        self.receivedAt = receivedAt
        self.sourceTime = sourceTime ?? time
    }
}

/// A WHEP offer answered: the SDP and the session's id (its resource is
/// `/whep/{stream}/{id}`).
public struct WHEPAnswerResult: Sendable {
    public let sdp: String
    public let sessionID: String
}

/// Why a WHEP request is refused, with the HTTP status to answer.
public struct WHEPRefusal: Error, Sendable, CustomStringConvertible {
    public let status: Int
    public let message: String

    public init(status: Int, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { "\(status): \(message)" }
}

/// What an endpoint has done so far, for logs, tests and metrics.
public struct WebRTCEndpointStats: Sendable, Equatable {
    public var sessions = 0
    public var connectedPeers = 0
    public var stunAnswered: UInt64 = 0
    /// Datagrams dropped before any state: unknown ufrag, failed check, unknown address, other kinds.
    public var datagramsDropped: UInt64 = 0
    public var handshakesCompleted: UInt64 = 0
    public var fingerprintMismatches: UInt64 = 0
    public var rtpPacketsSent: UInt64 = 0
    public var packetsResent: UInt64 = 0
    public var senderReports: UInt64 = 0
    public var pictureLossRequests: UInt64 = 0
    public var framesSkipped: UInt64 = 0
    public var peersExpired: UInt64 = 0
    /// STUN checks dropped before their HMAC: over the per-address budget (also in `datagramsDropped`).
    public var stunChecksRateLimited: UInt64 = 0
}
