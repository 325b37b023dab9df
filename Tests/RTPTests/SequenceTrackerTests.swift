import NIOCore
import RTP
import Testing

@Suite struct SequenceTrackerTests {
    func packet(_ sequence: UInt16) -> RTPPacket {
        RTPPacket(header: RTPHeader(payloadType: 96, sequenceNumber: sequence, timestamp: 0, ssrc: 1), payload: ByteBuffer())
    }

    /// Pushes raw sequence numbers; returns released extended numbers and lost ranges.
    func run(_ tracker: inout RTPSequenceTracker, _ sequences: [UInt16]) -> (released: [UInt64], lost: [ClosedRange<UInt64>]) {
        var released: [UInt64] = []
        var lost: [ClosedRange<UInt64>] = []
        for sequence in sequences {
            for event in tracker.push(packet(sequence)) {
                switch event {
                case .packet(let packet, let extended):
                    #expect(UInt16(truncatingIfNeeded: extended) == packet.header.sequenceNumber || tracker.statistics.restarts > 0)
                    released.append(extended)
                case .lost(let first, let count): lost.append(first...(first + count - 1))
                case .restarted: continue
                }
            }
        }
        return (released, lost)
    }

    @Test func sequenceNumbers_unwrapPast65535() {
        var tracker = RTPSequenceTracker()
        let (released, lost) = run(&tracker, [65533, 65534, 65535, 0, 1, 2])
        #expect(released == [65533, 65534, 65535, 65536, 65537, 65538])
        #expect(lost.isEmpty)
    }

    @Test func reorderingWithinTheWindow_isUndone() {
        var tracker = RTPSequenceTracker(window: 32)
        let (released, lost) = run(&tracker, [65534, 0, 65535, 3, 2, 1, 4])
        #expect(released == [65534, 65535, 65536, 65537, 65538, 65539, 65540])
        #expect(lost.isEmpty && tracker.heldPackets == 0)
    }

    @Test func aGapBeyondTheWindow_isDeclaredLost() {
        var tracker = RTPSequenceTracker(window: 4)
        // 11 never comes; 12...15 wait; 16 overflows the window.
        let (released, lost) = run(&tracker, [10, 12, 13, 14, 15])
        #expect(released == [10] && tracker.heldPackets == 4)
        let after = run(&tracker, [16, 11])
        #expect(after.released == [12, 13, 14, 15, 16])
        #expect(lost.isEmpty && after.lost == [11...11])
        #expect(tracker.statistics.lost == 1 && tracker.statistics.late == 1)
    }

    @Test func aFarJump_declaresTheSkippedLostWithoutHoldingThem() {
        var tracker = RTPSequenceTracker(window: 8)
        let (released, lost) = run(&tracker, [100, 102, 200])
        #expect(released == [100, 102])
        #expect(lost == [101...101, 103...191])
        let flushed = tracker.flush()
        #expect(flushed.count == 2)
    }

    @Test func duplicates_areCounted() {
        var tracker = RTPSequenceTracker()
        let (released, _) = run(&tracker, [5, 7, 7, 5, 6])
        #expect(released == [5, 6, 7])
        #expect(tracker.statistics.duplicates == 1 && tracker.statistics.late == 1)
    }

    @Test func aRestart_continuesTheNumbering() {
        var tracker = RTPSequenceTracker()
        let (released, lost) = run(&tracker, [1000, 1001, 40000, 40001])
        #expect(released == [1000, 1001, 1002, 1003])
        #expect(lost.isEmpty && tracker.statistics.restarts == 1)
    }

    @Test func timestamps_unwrapPast2To32() {
        var unwrapper = RTPTimestampUnwrapper()
        let times = [UInt32.max - 2999, UInt32.max - 1499, 500, 2000, 1000].map { unwrapper.unwrap($0) }
        #expect(times.map(\.time) == [4_294_964_296, 4_294_965_796, 4_294_967_796, 4_294_969_296, 4_294_968_296])
        #expect(times.allSatisfy { !$0.discontinuity })
    }

    @Test func aTimestampJump_isADiscontinuity() {
        var unwrapper = RTPTimestampUnwrapper(stepAfterJump: 3000)
        let times = [90_000, 93_000, 2_000_000_000, 2_000_003_000].map { unwrapper.unwrap($0) }
        #expect(times.map(\.time) == [90_000, 93_000, 96_000, 99_000])
        #expect(times.map(\.discontinuity) == [false, false, true, false])
        #expect(unwrapper.discontinuities == 1)
    }

    /// A 100 KiB keyframe's packets arriving swapped in pairs (after the first) across the
    /// sequence wrap come out of the tracker in order and rebuild the frame.
    @Test func reorderedFragments_rebuildTheFrameThroughTheTracker() throws {
        let units = [nalUnit([0x65, 0x88], size: 100 * 1024)]
        var sent = try packets(try NALPacketizer(codec: .h264).packetize(nalUnits: units), sequence: 65500)
        for index in stride(from: 1, to: sent.count - 1, by: 2) { sent.swapAt(index, index + 1) }
        var tracker = RTPSequenceTracker()
        var depacketizer = NALDepacketizer(codec: .h264)
        var ordered: [RTPPacket] = []
        for packet in sent {
            for case .packet(let released, _) in tracker.push(packet) { ordered.append(released) }
        }
        for case .packet(let released, _) in tracker.flush() { ordered.append(released) }
        let (frames, drops) = depacketize(&depacketizer, ordered)
        #expect(drops.isEmpty && tracker.statistics.lost == 0)
        #expect(bytes(frames.first?.nalUnits ?? []) == bytes(units))
    }
}
