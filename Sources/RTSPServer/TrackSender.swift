import ISOBMFF
import NIOCore
import RTP
import RTSPProtocol

/// One track of a served stream: how its samples become RTP packets, its
/// RTP numbering, and its counts for sender reports.
struct TrackSender: Sendable {
    enum Payload: Sendable {
        case video(NALPacketizer, RTPVideoCodec)
        case aac(AACPacketizer, audioSpecificConfig: [UInt8])
    }

    let mp4TrackID: UInt32
    let timescale: UInt32
    let payload: Payload
    let clockRate: Int
    let payloadType: UInt8
    private(set) var ssrc: UInt32
    /// The RTP time of the timeline's zero (random, RFC 3550 §5.1).
    private(set) var base: UInt32
    var sequence: UInt16
    /// Parameter sets sent before every keyframe (and in the SDP): the init segment's, or the first keyframe's.
    var parameterSets: [ByteBuffer]
    var width: Int?
    var height: Int?
    var packetCount: UInt32 = 0
    var octetCount: UInt32 = 0

    mutating func adopt(_ old: TrackSender) {
        ssrc = old.ssrc
        base = old.base
        sequence = old.sequence
        packetCount = old.packetCount
        octetCount = old.octetCount
        if parameterSets.isEmpty { parameterSets = old.parameterSets }
    }

    var isVideo: Bool { if case .video = payload { true } else { false } }

    /// What a client's decoder is set up for: a new init segment with the same layout keeps its clients.
    var layout: String {
        switch payload {
        case .video(_, let codec): "\(codec == .h264 ? "H264" : "H265")/\(clockRate)"
        case .aac(_, let config): "AAC/\(clockRate)/\(config)"
        }
    }

    /// A sender for `track`, or nil for a codec RTP is not served with here.
    init?(track: Track, mtu: Int, random: inout some RandomNumberGenerator) {
        mp4TrackID = track.id
        timescale = track.timescale
        ssrc = random.next()
        base = random.next()
        sequence = random.next()
        width = track.width
        height = track.height
        if let video = track.video {
            let codec: RTPVideoCodec = video.codec == .h264 ? .h264 : .h265
            guard let packetizer = try? NALPacketizer(codec: codec, configuration: .init(mtu: mtu, nalLengthSize: video.nalLengthSize))
            else { return nil }
            payload = .video(packetizer, codec)
            clockRate = 90000
            payloadType = 96
            parameterSets = video.parameterSets
        } else if track.isAudio, let codec = track.codec, codec.hasPrefix("mp4a.40."),
                  let config = Self.audioSpecificConfig(codec: codec, rate: track.sampleRate, channels: track.channels),
                  let packetizer = try? AACPacketizer(mtu: mtu) {
            payload = .aac(packetizer, audioSpecificConfig: config)
            clockRate = track.sampleRate ?? 0
            payloadType = 97
            parameterSets = []
        } else {
            return nil
        }
        guard clockRate > 0 else { return nil }
    }

    /// The SDP media section, nil while a video track's parameter sets are unknown (avc3/hev1 before a keyframe).
    func sdpMedia(control: String) -> SDPMedia? {
        switch payload {
        case .video(_, let codec):
            let sets = parameterSets.map { Array($0.readableBytesView) }
            let types = sets.map { codec == .h264 ? ($0[0] & 0x1F) : (($0[0] >> 1) & 0x3F) }
            var media: SDPMedia?
            if codec == .h264 {
                let sps = zip(types, sets).filter { $0.0 == 7 }.map(\.1), pps = zip(types, sets).filter { $0.0 == 8 }.map(\.1)
                if let first = sps.first, !pps.isEmpty { media = try? SDPMedia.h264(sps: first, pps: pps, control: control) }
            } else {
                func first(_ type: UInt8) -> [UInt8]? { zip(types, sets).first { $0.0 == type }?.1 }
                if let vps = first(32), let sps = first(33), let pps = first(34) {
                    media = SDPMedia.h265(vps: vps, sps: sps, pps: pps, control: control)
                }
            }
            return media
        case .aac(_, let config):
            return try? SDPMedia.aac(audioSpecificConfig: config, control: control)
        }
    }

    /// The parameter sets among a keyframe's NAL units (streams that carry them in band).
    static func parameterSets(in units: [ByteBuffer], codec: RTPVideoCodec) -> [ByteBuffer] {
        units.filter { unit in
            guard let first = unit.getInteger(at: unit.readerIndex, as: UInt8.self) else { return false }
            return codec == .h264 ? [7, 8].contains(first & 0x1F) : (32...34).contains((first >> 1) & 0x3F)
        }
    }

    /// A two-byte AudioSpecificConfig from the sample entry (object type, rate index, channels).
    static func audioSpecificConfig(codec: String, rate: Int?, channels: Int?) -> [UInt8]? {
        let rates = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350]
        guard let objectType = Int(codec.dropFirst("mp4a.40.".count)), (1...30).contains(objectType),
              let rate, let index = rates.firstIndex(of: rate), let channels, (1...7).contains(channels)
        else { return nil }
        let value = objectType << 11 | index << 7 | channels << 3
        return [UInt8(value >> 8), UInt8(value & 0xFF)]
    }
}
