import Foundation
import ISOBMFF
import NIOCore
import RTP
import Testing

@Suite struct NALRoundTripTests {
    static let payloadLimit = 1400 - 12
    /// Sizes at the edges of what fits one packet (payload and MTU), and well beyond.
    static let sizes = [3, payloadLimit - 1, payloadLimit, payloadLimit + 1, 1399, 1400, 1401, 100 * 1024]

    @Test(arguments: sizes) func h264_roundTripsEachSize(_ size: Int) throws {
        let units = [nalUnit([0x67, 0x42], size: 20), nalUnit([0x68], size: 4), nalUnit([0x65, 0x88], size: size)]
        let packetizer = try NALPacketizer(codec: .h264)
        let payloads = try packetizer.packetize(frame: lengthPrefixed(units))
        #expect(payloads.allSatisfy { $0.count <= Self.payloadLimit })
        #expect(payloads.filter(\.marker).count == 1 && payloads.last?.marker == true)
        #expect(payloads.count == 2 + (size <= Self.payloadLimit ? 1 : (size - 1 + Self.payloadLimit - 3) / (Self.payloadLimit - 2)))
        var depacketizer = NALDepacketizer(codec: .h264)
        let (frames, drops) = depacketize(&depacketizer, try packets(payloads))
        #expect(drops.isEmpty)
        #expect(frames.count == 1)
        #expect(bytes(frames.first?.nalUnits ?? []) == bytes(units))
        #expect(frames.first?.isKeyframe == true)
        #expect(frames.first?.lengthPrefixed() == lengthPrefixed(units))
    }

    @Test(arguments: sizes) func h265_roundTripsEachSize(_ size: Int) throws {
        // VPS, SPS, PPS, then an IDR_W_RADL (type 19) slice.
        let units = [nalUnit([0x40, 0x01], size: 24), nalUnit([0x42, 0x01], size: 40), nalUnit([0x44, 0x01], size: 7),
                     nalUnit([0x26, 0x01], size: size)]
        let packetizer = try NALPacketizer(codec: .h265, configuration: .init(aggregate: true))
        let payloads = try packetizer.packetize(frame: lengthPrefixed(units))
        #expect(payloads.allSatisfy { $0.count <= Self.payloadLimit })
        #expect(payloads.last?.marker == true)
        // The three parameter sets share one AP (type 48) unless the slice joins them.
        let first = try #require(payloads.first?.bytes)
        #expect(first.getInteger(at: first.readerIndex, as: UInt8.self).map { ($0 >> 1) & 0x3F } == 48)
        var depacketizer = NALDepacketizer(codec: .h265)
        let (frames, drops) = depacketize(&depacketizer, try packets(payloads, sequence: 65530))
        #expect(drops.isEmpty)
        #expect(bytes(frames.first?.nalUnits ?? []) == bytes(units))
        #expect(frames.first?.isKeyframe == true)
    }

    @Test func h264_stapA_roundTrips() throws {
        let units = [nalUnit([0x67, 0x42], size: 20), nalUnit([0x68], size: 4), nalUnit([0x65], size: 600),
                     nalUnit([0x06], size: 900)]
        let payloads = try NALPacketizer(codec: .h264, configuration: .init(aggregate: true)).packetize(nalUnits: units)
        #expect(payloads.count == 2)
        var depacketizer = NALDepacketizer(codec: .h264)
        let (frames, drops) = depacketize(&depacketizer, try packets(payloads))
        #expect(drops.isEmpty)
        #expect(bytes(frames.first?.nalUnits ?? []) == bytes(units))
    }

    @Test func singleUnits_areSlicesOfTheFrame() throws {
        let frame = lengthPrefixed([nalUnit([0x65], size: 100)])
        let payloads = try NALPacketizer(codec: .h264).packetize(frame: frame)
        let shared = frame.withUnsafeReadableBytes { whole in
            payloads[0].body.withUnsafeReadableBytes { $0.baseAddress == whole.baseAddress.map { $0 + 4 } }
        }
        #expect(shared)
    }

    @Test func badArguments_areRefused() {
        #expect(throws: RTPError.self) { try NALPacketizer(codec: .h264, configuration: .init(mtu: 15)) }
        #expect(throws: RTPError.self) { try NALPacketizer(codec: .h264, configuration: .init(nalLengthSize: 3)) }
        #expect(throws: RTPError.self) {
            try NALPacketizer(codec: .h264).packetize(frame: ByteBuffer(bytes: [0, 0, 0, 9, 0x65]))
        }
        #expect(throws: RTPError.self) { try NALPacketizer(codec: .h265).packetize(nalUnits: [ByteBuffer(bytes: [0x26, 1])]) }
    }

    /// One real keyframe of each codec, read from a fixture with ISOBMFF,
    /// with its parameter sets first as a server sends them, goes through
    /// RTP and comes back the same.
    @Test(arguments: ["h264-main-aac.mp4", "h265.mp4"]) func realKeyframe_roundTrips(_ file: String) throws {
        var parser = StreamingParser()
        parser.append(ByteBuffer(bytes: try Data(contentsOf: fixturesDirectory.appendingPathComponent(file))))
        var initSegment: InitSegment?
        var keyframe: (ByteBuffer, VideoDecoderConfiguration)?
        while keyframe == nil, let item = try parser.next() {
            switch item {
            case .initSegment(let segment): initSegment = segment
            case .fragment(let fragment):
                for sample in fragment.samples where sample.isSync {
                    if let video = initSegment?.track(sample.track)?.video {
                        keyframe = (fragment.data(of: sample), video)
                        break
                    }
                }
            case .skipped: continue
            }
        }
        let (sample, video) = try #require(keyframe)
        #expect(video.nalLengthSize == 4)
        let codec: RTPVideoCodec = video.codec == .h264 ? .h264 : .h265
        let packetizer = try NALPacketizer(codec: codec)
        let units = video.parameterSets + (try packetizer.nalUnits(of: sample))
        let payloads = try packetizer.packetize(nalUnits: units)
        #expect(payloads.count > 1)
        var depacketizer = NALDepacketizer(codec: codec)
        let (frames, drops) = depacketize(&depacketizer, try packets(payloads, sequence: 65000))
        #expect(drops.isEmpty)
        #expect(frames.count == 1)
        #expect(frames.first?.isKeyframe == true)
        #expect(bytes(frames.first?.nalUnits ?? []) == bytes(units))
    }
}
