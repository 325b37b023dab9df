import Foundation
import ISOBMFF
import NIOCore
import RTP
import RTSPProtocol
@testable import RTSPPlugin
import Testing

/// The RTP → fMP4 assembler as a value: a fixture's frames go out through
/// the RTP packetizers and come back as an init segment and fragments the
/// repo's parser reads, frame for frame; losses and hostile streams.
@Suite struct CameraAssemblerTests {
    struct Packets {
        var tracks: [CameraTrack]
        /// (track, RTP packet bytes), in sending order.
        var packets: [(Int, ByteBuffer)]
        var videoFrames: [ByteBuffer]
        var keyframes: [Bool]
    }

    func fixture(_ name: String) throws -> ByteBuffer {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/\(name)")
        return ByteBuffer(bytes: try Data(contentsOf: url))
    }

    /// The fixture's video (and AAC) as RTP packets, in decode order, parameter sets in the SDP only.
    func packets(_ name: String) throws -> Packets {
        var parser = StreamingParser()
        parser.append(try fixture(name))
        var initSegment: InitSegment?
        var samples: [(Sample, Fragment)] = []
        while let item = try parser.next() {
            if case .initSegment(let segment) = item { initSegment = segment }
            if case .fragment(let fragment) = item { samples += fragment.samples.map { ($0, fragment) } }
        }
        let segment = try #require(initSegment)
        let video = try #require(segment.tracks.first { $0.isVideo })
        let config = try #require(video.video)
        let codec: RTPVideoCodec = config.codec == .h264 ? .h264 : .h265
        var tracks = [CameraTrack(media: .video(codec), clockRate: 90_000, parameterSets: config.parameterSets)]
        let audio = segment.tracks.first { $0.isAudio }
        if let audio, let rate = audio.sampleRate, let channels = audio.channels {
            let index = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000].firstIndex(of: rate) ?? 4
            let asc = UInt16(2 << 11) | UInt16(index) << 7 | UInt16(channels) << 3
            tracks.append(CameraTrack(media: .aac(config: [UInt8(asc >> 8), UInt8(asc & 0xFF)], sampleRate: rate, channels: channels),
                                      clockRate: rate))
        }
        let packetizer = try NALPacketizer(codec: codec)
        let aac = try AACPacketizer()
        var out = Packets(tracks: tracks, packets: [], videoFrames: [], keyframes: [])
        var sequence: [UInt16] = [1000, 65530]
        for (sample, fragment) in samples {
            let data = fragment.data(of: sample)
            let isVideo = sample.track == video.id
            let track = isVideo ? 0 : 1
            let timescale = Int64(isVideo ? video.timescale : audio?.timescale ?? 1)
            let clock = Int64(tracks[track].clockRate)
            let timestamp = UInt32(truncatingIfNeeded: 7_000_000 + sample.pts * clock / timescale)
            let payloads = isVideo ? try packetizer.packetize(frame: data) : try aac.packetize(accessUnits: [data])
            if isVideo {
                out.videoFrames.append(data)
                out.keyframes.append(sample.flags & 0x0001_0000 == 0)
            }
            for payload in payloads {
                let header = RTPHeader(marker: payload.marker, payloadType: isVideo ? 96 : 97, sequenceNumber: sequence[track],
                                       timestamp: timestamp &+ payload.timestampOffset, ssrc: 0x1234)
                sequence[track] &+= 1
                out.packets.append((track, try payload.packet(header: header)))
            }
        }
        return out
    }

    /// Everything the assembler gave: init segments, video samples (bytes and times), problems.
    func assemble(_ packets: Packets, skip: Set<Int> = []) throws -> (inits: [InitSegment], video: [(Sample, ByteBuffer)], audio: Int, problems: [String]) {
        var assembler = RTPMediaAssembler(tracks: packets.tracks)
        var outputs: [RTPMediaAssembler.Output] = []
        for (index, (track, bytes)) in packets.packets.enumerated() where !skip.contains(index) {
            outputs += assembler.receive(bytes, track: track)
        }
        outputs += assembler.flush()
        var parser = StreamingParser()
        var inits: [InitSegment] = [], video: [(Sample, ByteBuffer)] = [], audio = 0, problems: [String] = []
        for output in outputs {
            switch output {
            case .initSegment(let bytes), .fragment(let bytes): parser.append(bytes)
            case .problem(let kind, let reason): problems.append("\(kind): \(reason)")
            }
            while let item = try parser.next() {
                if case .initSegment(let segment) = item { inits.append(segment) }
                if case .fragment(let fragment) = item {
                    for sample in fragment.samples {
                        if sample.track == 1 { video.append((sample, fragment.data(of: sample))) } else { audio += 1 }
                    }
                }
            }
        }
        return (inits, video, audio, problems)
    }

    @Test(arguments: ["h264-main-aac.mp4", "h265.mp4", "h264-high-bframes.mp4"])
    func everyFrameComesBack_withDecodeTimesThatIncrease(_ name: String) throws {
        let packets = try packets(name)
        let result = try assemble(packets)
        #expect(result.problems.isEmpty, "\(result.problems)")
        #expect(result.inits.count == 1)
        let video = try #require(result.inits.first?.tracks.first)
        #expect(video.width != nil && video.width! > 0)
        #expect(result.video.count == packets.videoFrames.count)
        for ((sample, bytes), original) in zip(result.video, packets.videoFrames) {
            #expect(bytes == original)
            #expect(sample.dts <= sample.pts)
        }
        for (a, b) in zip(result.video, result.video.dropFirst()) { #expect(a.0.dts < b.0.dts) }
        if packets.tracks.count > 1 { #expect(result.audio > 0) }
    }

    @Test func aLostPacket_dropsItsFrame_andTheFramesUpToTheNextKeyframe() throws {
        let packets = try packets("h264-main-aac.mp4")
        // A video packet of frame 10 (not a keyframe): find its first packet by counting markers.
        var frame = 0, lost: Int?
        for (index, (track, bytes)) in packets.packets.enumerated() where track == 0 {
            if frame == 10 { lost = index; break }
            if (bytes.getInteger(at: 1, as: UInt8.self) ?? 0) & 0x80 != 0 { frame += 1 }
        }
        let result = try assemble(packets, skip: [try #require(lost)])
        let nextKey = try #require(packets.keyframes.indices.first { $0 > 10 && packets.keyframes[$0] })
        #expect(result.video.count == packets.videoFrames.count - (nextKey - 10))
        #expect(result.problems.contains { $0.hasPrefix("frame-dropped: sequenceGap") }, "\(result.problems)")
    }

    @Test func endlessFragments_areDroppedAtTheFrameLimit_andMemoryStaysBounded() throws {
        var assembler = RTPMediaAssembler(tracks: [CameraTrack(media: .video(.h264), clockRate: 90_000)])
        var problems = 0
        var payload = ByteBuffer(bytes: [0x7C, 0x85] + [UInt8](repeating: 0, count: 1400))
        for sequence in 0..<8_000 {
            let header = RTPHeader(payloadType: 96, sequenceNumber: UInt16(sequence & 0xFFFF), timestamp: 0, ssrc: 1)
            let bytes = try payload.packetBytes(header)
            for output in assembler.receive(bytes, track: 0) {
                if case .problem = output { problems += 1 }
            }
            payload.setInteger(UInt8(0x05), at: 1) // middle fragments from here on
        }
        #expect(problems == 1, "one drop at 8 MiB, the rest ignored")
        #expect(assembler.framesOut == 0)
    }

    /// A camera whose clock jumps an hour ahead: a timestamp-jump event, and the frames go on with increasing times.
    @Test func aTimestampJump_isReported_andTheTimelineContinues() throws {
        var packets = try packets("h265.mp4")
        let half = packets.packets.count / 2
        for index in half..<packets.packets.count {
            let time = packets.packets[index].1.getInteger(at: 4, as: UInt32.self) ?? 0
            packets.packets[index].1.setInteger(time &+ 3600 * 90_000, at: 4)
        }
        let result = try assemble(packets)
        #expect(result.problems.contains { $0.hasPrefix("timestamp-jump") }, "\(result.problems)")
        #expect(result.video.count == packets.videoFrames.count)
        for (a, b) in zip(result.video, result.video.dropFirst()) { #expect(a.0.dts < b.0.dts) }
    }

    @Test func hostileSDPs_areRefusedWithAReason() throws {
        func media(_ fmtp: [(String, String)], encoding: String = "H264", clockRate: Int = 90_000) -> SDPMedia {
            SDPMedia(kind: "video", payloadType: 96, encoding: encoding, clockRate: clockRate, formatParameters: fmtp)
        }
        let huge = String(repeating: "Z", count: 8000)
        #expect(throws: CameraTrackError.self) { try CameraTrack(media([("sprop-parameter-sets", huge)])) }
        #expect(throws: CameraTrackError.self) { try CameraTrack(media([("sprop-parameter-sets", "!!!,@@@")])) }
        #expect(throws: CameraTrackError.self) { try CameraTrack(media([], clockRate: 0)) }
        #expect(throws: CameraTrackError.self) { try CameraTrack(media([("config", "zz")], encoding: "mpeg4-generic", clockRate: 44100)) }
        // An SPS that parses as base64 but not as an SPS: no init segment, a problem, no crash.
        var assembler = RTPMediaAssembler(tracks: [CameraTrack(media: .video(.h264), clockRate: 90_000,
                                                               parameterSets: [ByteBuffer(bytes: [0x67, 0xFF, 0xFF]), ByteBuffer(bytes: [0x68, 1])])])
        let header = RTPHeader(marker: true, payloadType: 96, sequenceNumber: 1, timestamp: 0, ssrc: 1)
        let outputs = assembler.receive(try ByteBuffer(bytes: [0x65, 1, 2, 3]).packetBytes(header), track: 0)
        #expect(outputs.contains { if case .problem(kind: "bad-parameter-sets", _) = $0 { true } else { false } }, "\(outputs)")
        #expect(!outputs.contains { if case .initSegment = $0 { true } else { false } })
    }
}

extension ByteBuffer {
    /// This payload behind `header`, as an RTP packet's bytes.
    func packetBytes(_ header: RTPHeader) throws -> ByteBuffer {
        var out = ByteBuffer()
        try header.write(to: &out)
        out.writeImmutableBuffer(self)
        return out
    }
}
