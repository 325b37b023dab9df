import Camflow
import ISOBMFF
import NIOCore
import WebRTC

/// Turns a stream's init segments and fragments into what the WebRTC
/// endpoint sends: the video track (codec, parameter sets) and each
/// fragment's video frames on one continuous timeline (a looped file or a
/// reconnected camera starting its times over keeps the RTP clock going
/// forward). Owned by the web sink's packet loop; never waits.
struct WebRTCFeed {
    let endpoint: WebRTCEndpoint
    let maxStreams: Int

    private struct StreamState {
        var initSegment: InitSegment
        var trackID: UInt32
        var timescale: UInt32
        /// Added to each sample's decode time (ns) so the timeline never goes back.
        var offset: Int64 = 0
        /// Where the next sample is expected on the timeline (ns).
        var expected: Int64?
        var bFrames = false
        /// The latest presentation time placed (ns): one going back in decode order is a B-frame.
        var lastPTS = Int64.min
    }

    private var streams: [String: StreamState] = [:]

    init(endpoint: WebRTCEndpoint, maxStreams: Int) {
        self.endpoint = endpoint
        self.maxStreams = maxStreams
    }

    mutating func publish(_ packet: Packet) {
        switch packet.kind {
        case .initSegment: take(initSegment: packet)
        case .fragment: take(fragment: packet)
        default: break
        }
    }

    private mutating func take(initSegment packet: Packet) {
        guard streams[packet.stream] != nil || streams.count < maxStreams,
              let parsed = try? InitSegment(parsing: packet.payload),
              let track = parsed.tracks.first(where: { $0.video != nil }), let video = track.video else { return }
        var state = StreamState(initSegment: parsed, trackID: track.id, timescale: track.timescale)
        if let old = streams[packet.stream] {
            // The timeline continues across a new init segment.
            state.offset = old.offset
            state.expected = old.expected
            state.bFrames = old.bFrames
        }
        streams[packet.stream] = state
        endpoint.publish(stream: packet.stream, track: WebRTCVideoTrack(
            codec: video.codec == .h264 ? .h264 : .h265, parameterSets: video.parameterSets,
            nalLengthSize: video.nalLengthSize, width: track.width, height: track.height, hasBFrames: state.bFrames))
    }

    private mutating func take(fragment packet: Packet) {
        guard var state = streams[packet.stream],
              let fragment = try? Fragment(parsing: packet.payload, initSegment: state.initSegment) else { return }
        let samples = fragment.samples.filter { $0.track == state.trackID }
        guard let first = samples.first else { return }
        let firstTime = Self.nanoseconds(first.dts, state.timescale)
        if let expected = state.expected {
            let placed = firstTime &+ state.offset
            if placed > expected &+ 5_000_000_000 || placed < expected &- 500_000_000 {
                state.offset = expected &- firstTime
                state.lastPTS = .min
            }
        }
        var frames: [WebRTCVideoFrame] = []
        frames.reserveCapacity(samples.count)
        for sample in samples {
            // Presentation going back in decode order: B-frames.
            let pts = Self.nanoseconds(sample.pts, state.timescale) &+ state.offset
            if pts < state.lastPTS, !state.bFrames {
                state.bFrames = true
                endpoint.noteBFrames(stream: packet.stream)
            }
            state.lastPTS = max(state.lastPTS, pts)
            let time = Self.nanoseconds(sample.dts, state.timescale) &+ state.offset
            // Only the first frame's send measures camflow's delay: the pacing holds the others back on purpose.
            frames.append(WebRTCVideoFrame(sample: fragment.data(of: sample), isKeyframe: sample.isSync, time: time,
                                           receivedAt: frames.isEmpty ? packet.receivedAt : 0,
                                           sourceTime: Self.nanoseconds(sample.dts, state.timescale)))
            state.expected = time &+ Self.nanoseconds(Int64(sample.duration), state.timescale)
        }
        streams[packet.stream] = state
        endpoint.publish(stream: packet.stream, frames: frames)
    }

    static func nanoseconds(_ ticks: Int64, _ timescale: UInt32) -> Int64 {
        guard timescale > 0 else { return 0 }
        let (seconds, rest) = ticks.quotientAndRemainder(dividingBy: Int64(timescale))
        return seconds &* 1_000_000_000 &+ rest * 1_000_000_000 / Int64(timescale)
    }
}
