import NIOCore
import RTP

/// One stream's video on the endpoint's event loop: its packetizer, the
/// frames of its current GOP (for joiners and PLI/FIR), and the
/// frames waiting for their send time (a fragment's frames are paced by
/// their decode times instead of leaving in one burst).
final class WebRTCStreamMedia {
    /// A frame cut into RTP payloads once, for every peer.
    struct Packetized {
        let payloads: [RTPPayload]
        /// The frame's time on the 90 kHz clock (before each peer's random base).
        let ticks: UInt32
        let isKeyframe: Bool
    }

    private(set) var track: WebRTCVideoTrack
    private var packetizer: NALPacketizer?
    /// The current GOP's frames, keyframe first.
    private(set) var gop: [WebRTCVideoFrame] = []
    private var gopBytes = 0
    /// Set when the GOP outgrew its bound: nothing cached until the next keyframe.
    private var gopOverflow = false
    let gopLimit: Int
    /// Frames due at a time (endpoint's monotonic time), oldest first.
    var pending: [(due: Duration, frame: WebRTCVideoFrame)] = []
    var pendingTimer: Scheduled<Void>?
    /// Where the last frame was put: the next fragment's frames never go before it.
    var lastDue: Duration = .zero
    /// The latest frame's timeline time and source time (ns): the answer's media clock.
    var mediaClock: (time: Int64, source: Int64)?
    var badFrames: UInt64 = 0
    /// Frames not sent because pacing fell more than `maxPending` behind.
    var overflowedFrames: UInt64 = 0
    static let maxPending = 512

    init(track: WebRTCVideoTrack, mtu: Int, gopLimit: Int) {
        self.track = track
        self.gopLimit = gopLimit
        packetizer = Self.packetizer(for: track, mtu: mtu)
    }

    /// A new init segment: the cache is dropped if the parameter sets changed.
    func update(_ fresh: WebRTCVideoTrack, mtu: Int) {
        if fresh.parameterSets != track.parameterSets || fresh.codec != track.codec || fresh.nalLengthSize != track.nalLengthSize {
            gop.removeAll()
            gopBytes = 0
            packetizer = Self.packetizer(for: fresh, mtu: mtu)
        }
        let sawBFrames = track.hasBFrames
        track = fresh
        track.hasBFrames = fresh.hasBFrames || sawBFrames
    }

    func noteBFrames() { track.hasBFrames = true }

    private static func packetizer(for track: WebRTCVideoTrack, mtu: Int) -> NALPacketizer? {
        try? NALPacketizer(codec: track.codec == .h264 ? .h264 : .h265,
                           configuration: .init(mtu: mtu, nalLengthSize: track.nalLengthSize))
    }

    /// Keeps a frame in the GOP cache (the sample is a slice of its
    /// fragment, not a copy): joiners and PLI/FIR start from it.
    func cache(_ frame: WebRTCVideoFrame) {
        if frame.isKeyframe {
            gop.removeAll(keepingCapacity: true)
            gopBytes = 0
            gopOverflow = false
        }
        guard !gopOverflow, !gop.isEmpty || frame.isKeyframe else { return }
        if gopBytes + frame.sample.readableBytes <= gopLimit {
            gop.append(frame)
            gopBytes += frame.sample.readableBytes
        } else {
            gopOverflow = true
            gop.removeAll()
            gopBytes = 0
        }
    }

    /// Cuts a frame into payloads (parameter sets before a keyframe that
    /// lacks them); nil for a frame that is not length-prefixed NAL units.
    /// Done only when a peer is to be sent it.
    func packetize(_ frame: WebRTCVideoFrame) -> Packetized? {
        guard let packetizer else { return nil }
        let payloads: [RTPPayload]
        do {
            var units = try packetizer.nalUnits(of: frame.sample)
            if frame.isKeyframe, !units.contains(where: { Self.isParameterSet($0, track.codec) }) {
                units = track.parameterSets + units
            }
            payloads = try packetizer.packetize(nalUnits: units)
        } catch {
            badFrames &+= 1
            return nil
        }
        return Packetized(payloads: payloads, ticks: Self.ticks(frame.time), isKeyframe: frame.isKeyframe)
    }

    /// A timeline time (ns) on the 90 kHz clock: time · 90000 / 1e9.
    static func ticks(_ time: Int64) -> UInt32 {
        UInt32(truncatingIfNeeded: time / 100_000 &* 9 &+ (time % 100_000) * 9 / 100_000)
    }

    static func isParameterSet(_ unit: ByteBuffer, _ codec: WebRTCVideoTrack.Codec) -> Bool {
        guard let first = unit.getInteger(at: unit.readerIndex, as: UInt8.self) else { return false }
        return codec == .h264 ? first & 0x1F == 7 : (first >> 1) & 0x3F == 33
    }
}
