import ISOBMFF
import NIOCore
import RTP
import RTSPProtocol

/// A track an RTSP camera set up, as far as turning its RTP into MP4 goes.
struct CameraTrack: Sendable {
    enum Media: Sendable {
        case video(RTPVideoCodec)
        case aac(config: [UInt8], sampleRate: Int, channels: Int)
    }

    var media: Media
    var clockRate: Int
    /// Parameter sets from the SDP (`sprop-*`), NAL units with their headers.
    var parameterSets: [ByteBuffer] = []

    /// The track of an SDP media section; throws a reason for one camflow cannot record.
    init(_ description: SDPMedia) throws(CameraTrackError) {
        do {
            try self.init(parsing: description)
        } catch {
            throw CameraTrackError(reason: "\(description.kind) track: \(error)")
        }
    }

    private init(parsing description: SDPMedia) throws(SDPError) {
        clockRate = description.clockRate
        guard (1000...1_000_000).contains(clockRate) else { throw .malformedLine(0, "a clock rate of \(clockRate)") }
        switch description.encoding.lowercased() {
        case "h264":
            media = .video(.h264)
            // In-band parameter sets do as well: a camera may send none in its SDP.
            if description.parameter("sprop-parameter-sets") != nil {
                parameterSets = try description.h264ParameterSets().map { ByteBuffer(bytes: $0) }
            }
        case "h265":
            media = .video(.h265)
            if description.parameter("sprop-sps") != nil {
                let sets = try description.h265ParameterSets()
                parameterSets = [sets.vps, sets.sps, sets.pps].map { ByteBuffer(bytes: $0) }
            }
        default:
            // The rtpmap's rate and channels are the AudioSpecificConfig's (RFC 3640 §4.1).
            let channels = description.channels ?? 1
            guard (1...8).contains(channels) else { throw .invalidAudioConfig("\(channels) channels") }
            media = .aac(config: try description.aacConfig(), sampleRate: clockRate, channels: channels)
        }
    }

    init(media: Media, clockRate: Int, parameterSets: [ByteBuffer] = []) {
        self.media = media
        self.clockRate = clockRate
        self.parameterSets = parameterSets
    }

    var isVideo: Bool { if case .video = media { true } else { false } }
}

/// Why a track of the camera's SDP cannot be recorded.
struct CameraTrackError: Error, Sendable, CustomStringConvertible {
    var reason: String
    var description: String { reason }
}

/// Turns a camera's RTP packets into fragmented MP4: an init segment, then
/// one `moof` + `mdat` per video frame (the audio that arrived meanwhile in
/// the same fragment, as a track of its own). A value: tested with packets
/// from the RTP packetizers, without sockets.
///
/// Per track: the sequence tracker reorders within its window and declares
/// losses; the depacketizer drops a damaged frame and skips to the next
/// keyframe; timestamps are unwrapped and made relative to the PLAY time
/// (RTP-Info's `rtptime`, else the first packet), plus `timeOffset` seconds
/// so that rebuilt decode times before the first frame stay positive. Video
/// decode times are rebuilt from presentation times (``DecodeTimeline``).
/// Parameter sets come from the SDP or in band; new ones at a keyframe give
/// a new init segment. Memory is bounded by the depacketizers' frame limit,
/// the tracker's window, the timeline's few frames and `maxPendingAudio`.
struct RTPMediaAssembler: Sendable {
    enum Output: Sendable, Equatable {
        case initSegment(ByteBuffer)
        case fragment(ByteBuffer)
        /// Something thrown away or mended, for an event: a short kind and a reason.
        case problem(kind: String, reason: String)
    }

    static let timeOffset: Int64 = 10
    static let maxPendingAudio = 64

    private struct Video: Sendable {
        var codec: RTPVideoCodec
        var depacketizer: NALDepacketizer
        var vps: [ByteBuffer] = [], sps: [ByteBuffer] = [], pps: [ByteBuffer] = []
        var timeline = DecodeTimeline<RTPAccessUnit>()
        /// The latest presentation time given to the timeline.
        var latest: Int64?
        /// Added to every presentation time since a keyframe stepped back in time.
        var shift: Int64 = 0
    }

    private struct Lane: Sendable {
        var track: CameraTrack
        var tracker = RTPSequenceTracker()
        var unwrapper = RTPTimestampUnwrapper()
        var base: Int64?
        var video: Video?
        var audio: AACDepacketizer?
    }

    private var lanes: [Lane]
    private let videoLane: Int?
    /// The parameter sets of the init segment written last (nil: none yet).
    private var written: [ByteBuffer]?
    private var pendingAudio: [WritableSample] = []
    private var sequence: UInt32 = 0
    private(set) var framesOut = 0
    private(set) var framesDropped = 0

    /// Frames passed over while awaiting a keyframe (after a loss, and before the first).
    var framesSkipped: Int {
        lanes.reduce(0) { $0 + ($1.video?.depacketizer.statistics.framesSkippedAwaitingKeyframe ?? 0) }
    }

    /// `rtpTimes`: RTP-Info's `rtptime` per track, when the server gave it.
    init(tracks: [CameraTrack], rtpTimes: [UInt32?] = []) {
        lanes = tracks.enumerated().map { index, track in
            var lane = Lane(track: track)
            switch track.media {
            case .video(let codec):
                var video = Video(codec: codec, depacketizer: NALDepacketizer(codec: codec))
                Self.take(track.parameterSets, into: &video)
                lane.video = video
            case .aac(_, let rate, _):
                lane.audio = AACDepacketizer(samplesPerUnit: UInt32(1024 * track.clockRate / max(rate, 1)))
            }
            if index < rtpTimes.count, let time = rtpTimes[index] { lane.base = lane.unwrapper.unwrap(time).time }
            return lane
        }
        videoLane = tracks.firstIndex { $0.isVideo }
    }

    /// Takes one RTP packet of track `index` (its position in `tracks`).
    mutating func receive(_ bytes: ByteBuffer, track index: Int) -> [Output] {
        guard lanes.indices.contains(index) else { return [] }
        let packet: RTPPacket
        do {
            packet = try RTPPacket(parsing: bytes)
        } catch {
            return [.problem(kind: "bad-packet", reason: "RTP: \(error)")]
        }
        var out: [Output] = []
        for event in lanes[index].tracker.push(packet) {
            if case .packet(let packet, _) = event { depacketize(packet, lane: index, into: &out) }
        }
        return out
    }

    /// The end of the stream: what the trackers, depacketizers and timeline hold goes out.
    mutating func flush() -> [Output] {
        var out: [Output] = []
        for index in lanes.indices {
            for event in lanes[index].tracker.flush() {
                if case .packet(let packet, _) = event { depacketize(packet, lane: index, into: &out) }
            }
            if var video = lanes[index].video {
                lanes[index].video = nil
                let events = video.depacketizer.flush()
                lanes[index].video = video
                for event in events { videoEvent(event, lane: index, into: &out) }
            }
        }
        if let videoLane, var video = lanes[videoLane].video {
            lanes[videoLane].video = nil
            let timed = video.timeline.flush()
            lanes[videoLane].video = video
            emit(timed, into: &out)
        }
        return out
    }

    private mutating func depacketize(_ packet: RTPPacket, lane index: Int, into out: inout [Output]) {
        // Taken out of the lane while it works, so its buffers are not copied on write.
        if var video = lanes[index].video {
            lanes[index].video = nil
            let events = video.depacketizer.push(packet)
            lanes[index].video = video
            for event in events { videoEvent(event, lane: index, into: &out) }
        } else if var audio = lanes[index].audio {
            lanes[index].audio = nil
            let events = audio.push(packet)
            lanes[index].audio = audio
            for event in events {
                switch event {
                case .accessUnit(let unit): audioUnit(unit, lane: index, into: &out)
                case .dropped(let drop): dropped(drop, into: &out)
                }
            }
        }
    }

    private mutating func dropped(_ drop: RTPDrop, into out: inout [Output]) {
        framesDropped += 1
        out.append(.problem(kind: "frame-dropped", reason: "\(drop.reason)"))
    }

    /// The time of `timestamp` on the track's timeline, nil when it falls before the start.
    private mutating func time(_ timestamp: UInt32, lane index: Int, into out: inout [Output]) -> Int64? {
        let (raw, jumped) = lanes[index].unwrapper.unwrap(timestamp)
        if jumped { out.append(.problem(kind: "timestamp-jump", reason: "RTP timestamp jumped; the timeline continues")) }
        let base = lanes[index].base ?? raw
        lanes[index].base = base
        let time = raw - base + Self.timeOffset * Int64(lanes[index].track.clockRate)
        guard time >= 0 else {
            out.append(.problem(kind: "frame-dropped", reason: "a timestamp \((base - raw) / Int64(lanes[index].track.clockRate)) s before the stream's start"))
            return nil
        }
        return time
    }

    private mutating func videoEvent(_ event: NALDepacketizer.Event, lane index: Int, into out: inout [Output]) {
        switch event {
        case .dropped(let drop):
            dropped(drop, into: &out)
        case .accessUnit(let unit):
            guard var pts = time(unit.timestamp, lane: index, into: &out), var video = lanes[index].video else { return }
            lanes[index].video = nil
            var held: [DecodeTimeline<RTPAccessUnit>.Timed] = []
            var newInit = false
            pts += video.shift
            if unit.isKeyframe {
                if let latest = video.latest, pts <= latest {
                    // A keyframe no later than a frame before it (a server that restarted its clock at a
                    // GOP): what is held leaves, and this GOP moves to just after the last frame.
                    held = video.timeline.flush()
                    let step = latest + max(video.timeline.lastDuration, 1) - pts
                    video.shift += step
                    pts += step
                    out.append(.problem(kind: "timestamp-jump", reason: "a keyframe's time stepped back; the video timeline moves on"))
                }
                Self.take(unit.nalUnits, into: &video)
                if video.vps + video.sps + video.pps != written {
                    // Frames of the old configuration leave before the new init segment.
                    held += video.timeline.flush()
                    newInit = true
                }
            }
            video.latest = max(video.latest ?? pts, pts)
            lanes[index].video = video
            emit(held, into: &out)
            if newInit, !writeInit(video: video, into: &out) { return }
            guard written != nil else { return } // no init yet: wait for a keyframe with parameter sets
            lanes[index].video = nil
            let timed = video.timeline.push(unit, pts: pts)
            lanes[index].video = video
            emit(timed, into: &out)
        }
    }

    private mutating func audioUnit(_ unit: RTPAudioUnit, lane index: Int, into out: inout [Output]) {
        guard let time = time(unit.timestamp, lane: index, into: &out) else { return }
        if videoLane == nil, written == nil, !writeInit(video: nil, into: &out) { return }
        guard written != nil else { return } // audio before the first keyframe is not recorded
        let duration = lanes[index].audio?.samplesPerUnit ?? 1024
        pendingAudio.append(WritableSample(track: UInt32(index + 1), dts: time, pts: time, duration: duration,
                                           flags: 0x0200_0000, data: unit.data))
        if videoLane == nil || pendingAudio.count >= Self.maxPendingAudio { fragment([], into: &out) }
    }

    private mutating func emit(_ timed: [DecodeTimeline<RTPAccessUnit>.Timed], into out: inout [Output]) {
        guard let videoLane else { return }
        for frame in timed {
            let sample = WritableSample(
                track: UInt32(videoLane + 1), dts: frame.dts, pts: frame.pts, duration: UInt32(clamping: frame.duration),
                flags: frame.frame.isKeyframe ? 0x0200_0000 : 0x0101_0000, data: frame.frame.lengthPrefixed())
            framesOut += 1
            fragment([sample], into: &out)
        }
    }

    private mutating func fragment(_ video: [WritableSample], into out: inout [Output]) {
        let samples = video + pendingAudio
        pendingAudio = []
        guard !samples.isEmpty else { return }
        sequence &+= 1
        if let bytes = FragmentWriter.fragment(sequenceNumber: sequence, samples: samples) {
            out.append(.fragment(bytes))
        } else {
            out.append(.problem(kind: "frame-dropped", reason: "a fragment that cannot be written (size or times out of range)"))
        }
    }

    /// Writes the init segment of every track; false (with a problem) when the video's parameter sets do not make one.
    private mutating func writeInit(video: Video?, into out: inout [Output]) -> Bool {
        var tracks: [WritableTrack] = []
        for (index, lane) in lanes.enumerated() {
            let id = UInt32(index + 1), timescale = UInt32(lane.track.clockRate)
            switch lane.track.media {
            case .video(let codec):
                guard let video, let first = video.sps.first else {
                    out.append(.problem(kind: "bad-parameter-sets", reason: "a keyframe without an SPS and none in the SDP"))
                    return false
                }
                let size: SequenceParameterSet
                do {
                    size = try SequenceParameterSet(parsing: first, codec: codec == .h264 ? .h264 : .h265)
                } catch {
                    out.append(.problem(kind: "bad-parameter-sets", reason: "SPS: \(error)"))
                    return false
                }
                tracks.append(WritableTrack(id: id, timescale: timescale, media: .video(
                    codec: codec == .h264 ? .h264 : .h265, vps: video.vps, sps: video.sps, pps: video.pps,
                    width: size.width, height: size.height)))
            case .aac(let config, let rate, let channels):
                tracks.append(WritableTrack(id: id, timescale: timescale, media: .aac(
                    audioSpecificConfig: config, sampleRate: rate, channels: channels)))
            }
        }
        do {
            out.append(.initSegment(try InitSegmentWriter.initSegment(tracks: tracks)))
        } catch {
            out.append(.problem(kind: "bad-parameter-sets", reason: "\(error)"))
            return false
        }
        written = video.map { $0.vps + $0.sps + $0.pps } ?? []
        return true
    }

    /// Keeps the parameter sets among `units` (the last of each kind, at most 4 KiB each).
    private static func take(_ units: [ByteBuffer], into video: inout Video) {
        var vps: [ByteBuffer] = [], sps: [ByteBuffer] = [], pps: [ByteBuffer] = []
        for unit in units where unit.readableBytes >= 2 && unit.readableBytes <= SDPMedia.maxParameterSetBytes {
            let header = unit.getInteger(at: unit.readerIndex, as: UInt8.self) ?? 0
            switch video.codec {
            case .h264:
                switch header & 0x1F {
                case 7: sps = [unit]
                case 8: pps = [unit]
                default: break
                }
            case .h265:
                switch (header >> 1) & 0x3F {
                case 32: vps = [unit]
                case 33: sps = [unit]
                case 34: pps = [unit]
                default: break
                }
            }
        }
        if !vps.isEmpty { video.vps = vps }
        if !sps.isEmpty { video.sps = sps }
        if !pps.isEmpty { video.pps = pps }
    }
}
