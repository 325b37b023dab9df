import NIOCore
import RTP
import Testing

/// Each hostile stream is bounded, reported as a drop, counted, and the
/// next keyframe is taken again.
@Suite struct HostileNALTests {
    func packet(_ payload: [UInt8], sequence: UInt16, timestamp: UInt32 = 90, marker: Bool = false) -> RTPPacket {
        RTPPacket(header: RTPHeader(marker: marker, payloadType: 96, sequenceNumber: sequence, timestamp: timestamp, ssrc: 1),
                  payload: ByteBuffer(bytes: payload))
    }

    /// A whole IDR in one packet: what a sender does after trouble.
    func keyframe(sequence: UInt16, timestamp: UInt32) -> RTPPacket {
        packet([0x65, 1, 2, 3], sequence: sequence, timestamp: timestamp, marker: true)
    }

    @Test func fragmentWithoutStart_isDropped() {
        var depacketizer = NALDepacketizer(codec: .h264)
        let (frames, drops) = depacketize(&depacketizer, [
            packet([0x7C, 0x05, 1, 2], sequence: 1),
            packet([0x7C, 0x45, 3, 4], sequence: 2, marker: true),
            keyframe(sequence: 3, timestamp: 180),
        ])
        #expect(drops.map(\.reason) == [.fragmentWithoutStart])
        #expect(frames.map(\.timestamp) == [180])
        #expect(depacketizer.statistics.framesDropped == 1)
    }

    @Test func endlessFragments_stopAtTheFrameLimit() {
        var depacketizer = NALDepacketizer(codec: .h264, configuration: .init(maxFrameSize: 64 * 1024))
        var packets = [packet([0x7C, 0x85] + [UInt8](repeating: 9, count: 1000), sequence: 0)]
        for index in 1..<1000 {
            packets.append(packet([0x7C, 0x05] + [UInt8](repeating: 9, count: 1000), sequence: UInt16(index)))
        }
        let (frames, drops) = depacketize(&depacketizer, packets)
        #expect(frames.isEmpty)
        #expect(drops.map(\.reason) == [.frameTooLarge(limit: 64 * 1024)])
        // The rest of the frame is ignored; the next keyframe comes out.
        let after = depacketize(&depacketizer, [keyframe(sequence: 1000, timestamp: 180)])
        #expect(after.units.count == 1 && after.drops.isEmpty)
    }

    @Test func fragmentWithoutEnd_isDroppedAtTheMarker() {
        var depacketizer = NALDepacketizer(codec: .h265)
        let (frames, drops) = depacketize(&depacketizer, [
            packet([0x62, 0x01, 0x93, 1, 2], sequence: 9),
            packet([0x62, 0x01, 0x13, 3, 4], sequence: 10, marker: true),
        ])
        #expect(frames.isEmpty)
        #expect(drops.map(\.reason) == [.fragmentWithoutEnd])
    }

    @Test func sequenceGapInsideAFrame_dropsItAndAwaitsAKeyframe() throws {
        let units = [nalUnit([0x65], size: 5000)]
        let payloads = try NALPacketizer(codec: .h264).packetize(nalUnits: units)
        var sent = try packets(payloads, sequence: 65534, timestamp: 0)
        sent.remove(at: 2)
        var depacketizer = NALDepacketizer(codec: .h264)
        let (frames, drops) = depacketize(&depacketizer, sent)
        #expect(frames.isEmpty)
        #expect(drops.map(\.reason) == [.sequenceGap(missing: 1)])
        #expect(depacketizer.awaitingKeyframe)
        // A complete non-key frame is passed over; the keyframe after comes out.
        let later = depacketize(&depacketizer, [
            packet([0x41, 1, 2], sequence: 2, timestamp: 3000, marker: true),
            keyframe(sequence: 3, timestamp: 6000),
        ])
        #expect(later.units.map(\.timestamp) == [6000] && later.drops.isEmpty)
        #expect(depacketizer.statistics.framesSkippedAwaitingKeyframe == 1)
    }

    @Test func lateAndDuplicatePackets_areIgnored() {
        var depacketizer = NALDepacketizer(codec: .h264)
        let (frames, drops) = depacketize(&depacketizer, [
            keyframe(sequence: 10, timestamp: 0), keyframe(sequence: 10, timestamp: 0), keyframe(sequence: 5, timestamp: 0),
        ])
        #expect(frames.count == 1 && drops.isEmpty)
        #expect(depacketizer.statistics.packetsLate == 2)
    }

    @Test(arguments: [
        [UInt8]([0x18, 0x00]),               // STAP-A: size field cut short
        [0x18, 0x00, 0x09, 0x65, 1],         // STAP-A: unit longer than the payload
        [0x18, 0x00, 0x00, 0x00, 0x01, 0x65], // STAP-A: empty unit
        [0x1C, 0x85],                         // FU-A with no data
        [0x65],                               // a header and nothing else
        [0x19, 0, 0, 0],                      // STAP-B
        [0x1D, 0x85, 1],                      // FU-B
        [0x00, 1, 2],                         // reserved type 0
    ]) func malformedH264Payloads_areDropped(_ payload: [UInt8]) {
        var depacketizer = NALDepacketizer(codec: .h264)
        let (frames, drops) = depacketize(&depacketizer, [packet(payload, sequence: 1, marker: true)])
        #expect(frames.isEmpty)
        #expect(drops.count == 1)
    }

    @Test(arguments: [
        [UInt8]([0x60, 0x01, 0x00]),             // AP: size field cut short
        [0x60, 0x01, 0x00, 0x09, 0x26, 1],       // AP: unit longer than the payload
        [0x62, 0x01, 0x93],                      // FU with no data
        [0x64, 0x01, 0, 0],                      // PACI
        [0x26],                                  // half a header
    ]) func malformedH265Payloads_areDropped(_ payload: [UInt8]) {
        var depacketizer = NALDepacketizer(codec: .h265)
        let (frames, drops) = depacketize(&depacketizer, [packet(payload, sequence: 1, marker: true)])
        #expect(frames.isEmpty)
        #expect(drops.count == 1)
    }

    @Test func tooManyUnits_isBounded() throws {
        var depacketizer = NALDepacketizer(codec: .h264, configuration: .init(maxUnitsPerFrame: 10))
        let payloads = try NALPacketizer(codec: .h264, configuration: .init(aggregate: true))
            .packetize(nalUnits: [nalUnit([0x65], size: 3)] + Array(repeating: nalUnit([0x06], size: 3), count: 50))
        let (frames, drops) = depacketize(&depacketizer, try packets(payloads))
        #expect(frames.isEmpty)
        #expect(drops.map(\.reason) == [.tooManyUnits(limit: 10)])
    }

    @Test func timestampChange_endsAFrameWithoutItsMarker() {
        var depacketizer = NALDepacketizer(codec: .h264)
        let (frames, _) = depacketize(&depacketizer, [
            packet([0x65, 1], sequence: 1, timestamp: 0),
            packet([0x41, 1], sequence: 2, timestamp: 3000),
        ])
        #expect(frames.map(\.timestamp) == [0])
        #expect(depacketizer.flush().count == 1)
    }

    /// H.265 under the same bounds: FU without a start, endless FUs, a gap inside a frame.
    @Test func h265_hostileFragments_areBounded() throws {
        var depacketizer = NALDepacketizer(codec: .h265, configuration: .init(maxFrameSize: 32 * 1024))
        var sent = [packet([0x62, 0x01, 0x13, 1, 2], sequence: 1, timestamp: 0, marker: true)]
        sent.append(packet([0x62, 0x01, 0x93] + [UInt8](repeating: 5, count: 1000), sequence: 2, timestamp: 3000))
        for index in 3..<100 {
            sent.append(packet([0x62, 0x01, 0x13] + [UInt8](repeating: 5, count: 1000), sequence: UInt16(index), timestamp: 3000))
        }
        let keyframe = try NALPacketizer(codec: .h265).packetize(nalUnits: [nalUnit([0x26, 0x01], size: 4000)])
        var tail = try packets(keyframe, sequence: 100, timestamp: 6000)
        tail.remove(at: 1)
        sent += tail
        sent += try packets(keyframe, sequence: 100 + UInt16(keyframe.count), timestamp: 9000)
        let (frames, drops) = depacketize(&depacketizer, sent)
        #expect(drops.map(\.reason) == [.fragmentWithoutStart, .frameTooLarge(limit: 32 * 1024), .sequenceGap(missing: 1)])
        #expect(frames.map(\.timestamp) == [9000])
    }
}
