import CamflowTesting
import Foundation
import ISOBMFF
import MediaCache
import NIOCore
import RTP
import RTSPProtocol
@testable import RTSPServer
import Testing

/// The server's state as values, without I/O: the timeline, the per-client
/// queue policy, the GOP cache, sender reports, request targets, and a real
/// file's fragments through packetization and back.
@Suite struct ServerTimelineTests {
    @Test func timesStartAtZeroAndFollowTheSamples() {
        var timeline = RTPTimeline()
        timeline.begin(firstDecodeTimes: [(0, RTPTimeline.nanoseconds(9000, 90000))])
        let first = timeline.place(track: 0, dts: 9000, pts: 12600, duration: 3600, timescale: 90000)
        #expect(first.dts == 0 && first.pts == 40_000_000)
        let second = timeline.place(track: 0, dts: 12600, pts: 12600, duration: 3600, timescale: 90000)
        #expect(second.dts == 40_000_000)
        #expect(RTPTimeline.rtpTime(second.pts, rate: 90000, base: 10) == 10 + 3600)
    }

    @Test func aLoopContinuesWhereTheStreamWasForEveryTrack() {
        var timeline = RTPTimeline()
        // Five seconds of video (25 fps, timescale 12800) and audio (48 kHz), then both start over at 0.
        timeline.begin(firstDecodeTimes: [(0, 0), (1, 0)])
        for frame in 0..<125 { _ = timeline.place(track: 0, dts: Int64(frame) * 512, pts: Int64(frame) * 512, duration: 512, timescale: 12800) }
        for unit in 0..<234 { _ = timeline.place(track: 1, dts: Int64(unit) * 1024, pts: Int64(unit) * 1024, duration: 1024, timescale: 48000) }
        let end = timeline.end
        // The file's audio starts 20 ms before its video: both move by the same amount, audio first at the end.
        timeline.begin(firstDecodeTimes: [(0, 20_000_000), (1, 0)])
        let video = timeline.place(track: 0, dts: 256, pts: 256, duration: 512, timescale: 12800)
        let audio = timeline.place(track: 1, dts: 0, pts: 0, duration: 1024, timescale: 48000)
        #expect(audio.dts == end && video.dts == end + 20_000_000, "both tracks continue at the stream's end, together")
        #expect(timeline.discontinuities == 1)
    }

    @Test func aShortLoopIsADiscontinuityToo() {
        var timeline = RTPTimeline()
        timeline.begin(firstDecodeTimes: [(0, 0)])
        for frame in 0..<25 { _ = timeline.place(track: 0, dts: Int64(frame) * 3600, pts: Int64(frame) * 3600, duration: 3600, timescale: 90000) }
        let end = timeline.end
        timeline.begin(firstDecodeTimes: [(0, 0)])
        let again = timeline.place(track: 0, dts: 0, pts: 0, duration: 3600, timescale: 90000)
        #expect(again.dts == end && timeline.discontinuities == 1)
        // A gap forward shorter than the limit is kept (a camera's dropout happened).
        timeline.begin(firstDecodeTimes: [(0, RTPTimeline.nanoseconds(3 * 90000, 90000))])
        let later = timeline.place(track: 0, dts: 3 * 90000, pts: 3 * 90000, duration: 3600, timescale: 90000)
        #expect(later.dts == end + 3_000_000_000 && timeline.discontinuities == 1)
    }

    @Test func afterAPauseTheStreamResumesWhereTheWallClockIs() {
        var timeline = RTPTimeline()
        timeline.begin(firstDecodeTimes: [(0, 0)])
        _ = timeline.place(track: 0, dts: 0, pts: 0, duration: 90000, timescale: 90000)
        timeline.restart()
        // The camera came back 10 s later (the wall clock says the stream is at 11 s): a one-second fragment ends there.
        timeline.begin(firstDecodeTimes: [(0, 0)], fragmentEnd: 1_000_000_000, live: 11_000_000_000)
        let resumed = timeline.place(track: 0, dts: 0, pts: 0, duration: 90000, timescale: 90000)
        #expect(resumed.dts == 10_000_000_000)
        // A file starting over on time continues where it was, never before.
        timeline.restart()
        timeline.begin(firstDecodeTimes: [(0, 0)], fragmentEnd: 1_000_000_000, live: 5_000_000_000)
        let again = timeline.place(track: 0, dts: 0, pts: 0, duration: 90000, timescale: 90000)
        #expect(again.dts == 11_000_000_000)
    }

    @Test func aNewInitSegmentRebasesOnItsFirstSample() {
        var timeline = RTPTimeline()
        timeline.begin(firstDecodeTimes: [(0, 0)])
        _ = timeline.place(track: 0, dts: 0, pts: 3000, duration: 3000, timescale: 90000)
        timeline.restart()
        // The reconnected camera's clock is somewhere else entirely, but only slightly ahead.
        timeline.begin(firstDecodeTimes: [(0, RTPTimeline.nanoseconds(1_000, 90000))])
        let next = timeline.place(track: 0, dts: 1_000, pts: 4_000, duration: 3000, timescale: 90000)
        #expect(next.dts == RTPTimeline.nanoseconds(3000, 90000))
        #expect(next.pts == next.dts + RTPTimeline.nanoseconds(3000, 90000))
    }

    @Test func rtpTimesWrapAndHugeTimesDoNotTrap() {
        #expect(RTPTimeline.rtpTime(Int64.max / 2, rate: 90000, base: .max) != 0 || true)
        #expect(RTPTimeline.nanoseconds(Int64.max, 1) != 0)
        #expect(RTPTimeline.nanoseconds(5, 0) == 0)
        // RTP time wraps past 2^32.
        #expect(RTPTimeline.rtpTime(1_000_000_000, rate: 90000, base: .max - 10) == 90000 - 11)
    }
}

@Suite struct ServerClientQueueTests {
    @Test func aJoinerWaitsForAGOPStart() {
        var queue = ClientQueue<Int>(limit: 100)
        let early = queue.push(1, size: 10, startsGOP: false)
        let start = queue.push(2, size: 10, startsGOP: true)
        let next = queue.push(3, size: 10, startsGOP: false)
        #expect(!early && start && next)
        let out = [queue.pop(), queue.pop(), queue.pop()]
        #expect(out == [2, 3, nil])
        #expect(queue.packetsDropped == 1)
    }

    @Test func aSlowClientLosesWholeGOPsWithinItsBound() {
        var queue = ClientQueue<Int>(limit: 100, waitingForGOP: false)
        for index in 0..<10 { queue.push(index, size: 10, startsGOP: index == 0) }
        #expect(queue.bytes == 100)
        // Over the bound: the GOP in flight goes, and so does the rest of it.
        let over = queue.push(10, size: 10, startsGOP: false)
        #expect(!over && queue.isEmpty && queue.gopsDropped == 1 && queue.bytes == 0)
        let rest = queue.push(11, size: 10, startsGOP: false)
        #expect(!rest)
        // The next GOP starts afresh.
        let next = queue.push(12, size: 10, startsGOP: true)
        let first = queue.pop()
        #expect(next && first == 12)
        #expect(queue.packetsDropped == 12)
    }

    @Test func aGOPStartThatOverflowsBeginsAfresh() {
        var queue = ClientQueue<Int>(limit: 30, waitingForGOP: false)
        queue.push(0, size: 20, startsGOP: true)
        let second = queue.push(1, size: 20, startsGOP: true)
        let first = queue.pop()
        #expect(second && queue.gopsDropped == 1 && first == 1)
        let huge = queue.push(2, size: 31, startsGOP: true)
        #expect(!huge, "larger than the whole bound")
    }
}

@Suite struct ServerSmallValueTests {
    @Test func gopBufferKeepsTheCurrentGOPWithinItsBound() {
        var gop = GOPBuffer<Int>(limit: 25)
        gop.append(0, size: 10, startsGOP: false)
        #expect(gop.items.isEmpty, "nothing before the first GOP start")
        gop.append(1, size: 10, startsGOP: true)
        gop.append(2, size: 10, startsGOP: false)
        #expect(gop.items == [1, 2])
        gop.append(3, size: 10, startsGOP: false)
        #expect(gop.items.isEmpty && gop.overflows == 1)
        gop.append(4, size: 10, startsGOP: false)
        #expect(gop.items.isEmpty)
        gop.append(5, size: 10, startsGOP: true)
        #expect(gop.items == [5])
    }

    @Test func senderReportIsRFC3550() {
        let report = SenderReport(ssrc: 0x1234_5678, wallTime: 1.5, rtpTime: 90000, packets: 3, octets: 4000)
        let bytes = Array(report.bytes.readableBytesView)
        #expect(bytes.count == 28)
        #expect(bytes[0] == 0x80 && bytes[1] == 200 && bytes[2] == 0 && bytes[3] == 6)
        #expect(report.ntp >> 32 == SenderReport.ntpOffset + 1)
        #expect(report.ntp & 0xFFFF_FFFF == 0x8000_0000)
    }

    @Test func targetsAreReadFromAbsoluteAndRelativeURIs() {
        #expect(RTSPTarget(uri: "rtsp://h:8554/cam1") == RTSPTarget(uri: "/cam1"))
        #expect(RTSPTarget(uri: "rtsp://h:8554/cam1/trackID=1")?.track == 1)
        #expect(RTSPTarget(uri: "rtsp://h:8554/cam1/trackID=1")?.stream == "cam1")
        #expect(RTSPTarget(uri: "rtsp://h:8554/a/b/?x=1")?.stream == "a/b")
        #expect(RTSPTarget(uri: "rtsp://h:8554/") == nil)
        #expect(RTSPTarget(uri: "rtsp://h:8554/cam1/trackID=99999999999999999999") == nil)
        #expect(RTSPTarget(uri: "rtsp://h:8554/cam1/trackID=-1") == nil)
        #expect(RTSPTarget(uri: "rtsp://h:8554/" + String(repeating: "a", count: 300)) == nil)
        #expect(RTSPTarget.base(of: "rtsp://h/cam1/trackID=0", stream: "cam1") == "rtsp://h/cam1")
    }

    @Test func aTrackHasOneSpellingWithoutLeadingZerosOrSign() {
        #expect(RTSPTarget(uri: "rtsp://h:8554/cam1/trackID=0")?.track == 0)
        #expect(RTSPTarget(uri: "rtsp://h:8554/cam1/trackID=10")?.track == 10)
        #expect(RTSPTarget(uri: "rtsp://h:8554/cam1/trackID=0001") == nil)
        #expect(RTSPTarget(uri: "rtsp://h:8554/cam1/trackID=00") == nil)
        #expect(RTSPTarget(uri: "rtsp://h:8554/cam1/trackID=+1") == nil)
        #expect(RTSPTarget(uri: "rtsp://h:8554/cam1/trackID=" + String(repeating: "0", count: 25) + "1") == nil)
    }

    @Test func interleavedDataBeyondTheBudgetIsRefusedAndQuietTimeRefillsIt() {
        let second: Int64 = 1_000_000_000
        var budget = InterleavedBudget(rate: 1000, burst: 4000)
        // Receiver reports: a few hundred bytes now and then, for ever.
        let reports = (0..<1000).filter { tick in budget.take(300, now: Int64(tick) * second) }.count
        #expect(reports == 1000)
        // A flood: the burst passes, the rest does not.
        var taken = 0
        while budget.take(1000, now: 1000 * second) { taken += 1 }
        #expect(taken == 4)
        var refilled = InterleavedBudget(rate: 1000, burst: 4000)
        let steps = [refilled.take(5000, now: 0), refilled.take(500, now: 2 * second),
                     refilled.take(3000, now: Int64.max / 2), refilled.take(1001, now: Int64.max / 2)]
        // Too much at once; two quiet seconds give back 2000 bytes; a long quiet time fills the bucket (no overflow).
        #expect(steps == [false, true, true, false])
    }

    @Test func everyRFC2326StatusHasItsReasonPhrase() {
        #expect(RTSPResponse.reason(for: 453) == "Not Enough Bandwidth")
        #expect(RTSPResponse.reason(for: 461) == "Unsupported Transport")
        for status in [100, 200, 201, 250, 300, 301, 302, 303, 304, 305, 400, 401, 402, 403, 404, 405, 406, 407, 408, 410,
                       411, 412, 413, 414, 415, 451, 452, 453, 454, 455, 456, 457, 458, 459, 460, 461, 462, 500, 501, 502,
                       503, 504, 505, 551] {
            #expect(!RTSPResponse.reason(for: status).hasPrefix("Status"), "\(status)")
        }
    }
}

@Suite struct ServerPacketizationTests {
    /// The init segment and fragments of a fixture, as mp4-parse would emit them.
    static func segments(_ name: String) throws -> (initSegment: ByteBuffer, fragments: [ByteBuffer]) {
        let data = try Data(contentsOf: repositoryFile("Tests/Fixtures/\(name)"))
        var parser = StreamingParser()
        parser.append(ByteBuffer(bytes: data))
        var initSegment: ByteBuffer?
        var fragments: [ByteBuffer] = []
        while let item = try parser.next() {
            switch item {
            case .initSegment(let segment): initSegment = segment.bytes
            case .fragment(let fragment): fragments.append(fragment.bytes)
            case .skipped: break
            }
        }
        return (try #require(initSegment), fragments)
    }

    @Test(arguments: [("h264-main-aac.mp4", RTPVideoCodec.h264), ("h265.mp4", RTPVideoCodec.h265)])
    func everyVideoFrameComesBackWhole(file: String, codec: RTPVideoCodec) throws {
        let (initBytes, fragments) = try Self.segments(file)
        var stream = MediaStream(name: "cam", mtu: 1400, gopLimit: 16 << 20)
        var random = SystemRandomNumberGenerator()
        let changed = try stream.take(initSegment: initBytes, random: &random)
        #expect(!changed)
        let sdp = try #require(stream.sessionDescription(origin: "0.0.0.0"))
        #expect(sdp.contains(codec == .h264 ? "H264/90000" : "H265/90000"))
        var depacketizer = NALDepacketizer(codec: codec)
        var frames = 0, keyframes = 0, samples = 0
        var lastSequence: UInt16?
        for bytes in fragments {
            let fragment = try Fragment(parsing: bytes, initSegment: try InitSegment(parsing: initBytes))
            samples += fragment.samples.filter { $0.track == fragment.samples.first?.track }.count
            for packet in try stream.take(fragment: bytes, now: .now) where packet.track == 0 {
                #expect(packet.size <= 1400 + 4)
                let rtp = try RTPPacket(parsing: packet.rtp)
                if let lastSequence { #expect(rtp.header.sequenceNumber == lastSequence &+ 1) }
                lastSequence = rtp.header.sequenceNumber
                for event in depacketizer.push(rtp) {
                    if case .accessUnit(let unit) = event {
                        frames += 1
                        if unit.isKeyframe { keyframes += 1 }
                    }
                    if case .dropped(let drop) = event { Issue.record("dropped: \(drop)") }
                }
            }
        }
        for event in depacketizer.flush() { if case .accessUnit = event { frames += 1 } }
        #expect(frames == samples && keyframes >= 1)
        #expect(stream.badSamples == 0)
        #expect(stream.gop.items.first?.startsGOP == true)
    }

    @Test func audioIsAACAndParameterSetsPrecedeKeyframes() throws {
        let (initBytes, fragments) = try Self.segments("h264-main-aac.mp4")
        var stream = MediaStream(name: "cam", mtu: 1400, gopLimit: 16 << 20)
        var random = SystemRandomNumberGenerator()
        _ = try stream.take(initSegment: initBytes, random: &random)
        let sdp = try #require(stream.sessionDescription(origin: "0.0.0.0"))
        #expect(sdp.contains("mpeg4-generic/48000") && sdp.contains("sprop-parameter-sets="))
        let packets = try stream.take(fragment: fragments[0], now: .now)
        let start = try #require(packets.first { $0.startsGOP })
        let rtp = try RTPPacket(parsing: start.rtp)
        #expect(rtp.payload.getInteger(at: rtp.payload.readerIndex, as: UInt8.self).map { $0 & 0x1F } == 7, "SPS first")
        #expect(packets.contains { $0.track == 1 })
        // Decode order across tracks: timeline times never go back by more than a frame's reordering.
        #expect(packets.filter { $0.track == 1 }.map(\.time) == packets.filter { $0.track == 1 }.map(\.time).sorted())
    }

    @Test func senderReportTimesFollowTheWallClockEvenlyWhateverTheArrivals() throws {
        let (initBytes, fragments) = try Self.segments("h264-main-aac.mp4")
        var stream = MediaStream(name: "cam", mtu: 1400, gopLimit: 16 << 20)
        var random = SystemRandomNumberGenerator()
        _ = try stream.take(initSegment: initBytes, random: &random)
        let start = ContinuousClock.now
        var media = Duration.zero
        var reports: [(at: ContinuousClock.Instant, rtp: UInt32)] = []
        for (index, bytes) in fragments.enumerated() {
            let fragment = try Fragment(parsing: bytes, initSegment: try InitSegment(parsing: initBytes))
            let video = fragment.samples.filter { $0.track == fragment.samples[0].track }
            media += .nanoseconds(RTPTimeline.nanoseconds(Int64(video.reduce(0) { $0 + $1.duration }), 12800))
            // Fragments arrive in real time, give or take up to 200 ms.
            let arrival = start + media + .milliseconds(index % 2 == 0 ? 0 : 200)
            _ = try stream.take(fragment: bytes, now: arrival)
            let at = arrival + .milliseconds(50)
            reports.append((at, try #require(stream.rtpTime(track: 0, at: at))))
        }
        for (earlier, later) in zip(reports, reports.dropFirst()) {
            let wall = earlier.at.duration(to: later.at)
            let expected = Double(wall.components.seconds) * 90000 + Double(wall.components.attoseconds) * 90000 / 1e18
            #expect(abs(Double(later.rtp &- earlier.rtp) - expected) < 2, "reports advance with the wall clock")
        }
    }

    /// avc3-style: no parameter sets in the sample entry, SPS and PPS in the keyframe itself.
    @Test func parameterSetsCarriedInBandAreLearnedFromTheFirstKeyframe() throws {
        let (initBytes, fragments) = try Self.segments("h264-main-aac.mp4")
        var parsed = try InitSegment(parsing: initBytes)
        let video = try #require(parsed.tracks.firstIndex { $0.video != nil })
        let sets = try #require(parsed.tracks[video].video?.parameterSets)
        parsed.tracks[video].video?.sps = []
        parsed.tracks[video].video?.pps = []
        var stream = MediaStream(name: "cam", mtu: 1400, gopLimit: 16 << 20)
        var random = SystemRandomNumberGenerator()
        _ = try stream.take(initSegment: parsed, random: &random)
        #expect(stream.sessionDescription(origin: "0.0.0.0") == nil, "not ready before a keyframe")
        // The first fragment again, its keyframe carrying the parameter sets in band.
        let fragment = try Fragment(parsing: fragments[0], initSegment: parsed)
        let trackID = parsed.tracks[video].id
        var samples = fragment.samples.map { WritableSample($0, of: fragment) }
        let key = try #require(samples.firstIndex { $0.track == trackID && $0.isSync })
        var data = ByteBuffer()
        for set in sets {
            data.writeInteger(UInt32(set.readableBytes))
            data.writeImmutableBuffer(set)
        }
        data.writeImmutableBuffer(samples[key].data)
        samples[key].data = data
        let rewritten = try #require(FragmentWriter.fragment(sequenceNumber: 1, samples: samples))
        let packets = try stream.take(fragment: rewritten, now: .now)
        let sdp = try #require(stream.sessionDescription(origin: "0.0.0.0"))
        var reference = MediaStream(name: "cam", mtu: 1400, gopLimit: 16 << 20)
        _ = try reference.take(initSegment: initBytes, random: &random)
        let expected = try #require(reference.sessionDescription(origin: "0.0.0.0"))
        func sprop(_ text: String) -> Substring? {
            text.split(separator: ";").first { $0.contains("sprop-parameter-sets=") }
        }
        #expect(sprop(sdp) != nil && sprop(sdp) == sprop(expected))
        // Sent once, as the frame carries them (not prepended a second time).
        let startOfKey = try #require(packets.first { $0.startsGOP })
        let spsPackets = try packets.filter { $0.track == startOfKey.track && $0.timestamp == startOfKey.timestamp }.filter {
            let rtp = try RTPPacket(parsing: $0.rtp)
            return rtp.payload.getInteger(at: rtp.payload.readerIndex, as: UInt8.self).map { $0 & 0x1F } == 7
        }
        #expect(spsPackets.count == 1)
    }

    @Test func aNewLayoutDropsTheClientsAndTheCache() throws {
        var stream = MediaStream(name: "cam", mtu: 1400, gopLimit: 16 << 20)
        var random = SystemRandomNumberGenerator()
        let (h264, fragments) = try Self.segments("h264-main-aac.mp4")
        _ = try stream.take(initSegment: h264, random: &random)
        _ = try stream.take(fragment: fragments[0], now: .now)
        let same = try stream.take(initSegment: h264, random: &random)
        #expect(!same && !stream.gop.items.isEmpty, "the same layout keeps the GOP for joiners")
        let (h265, _) = try Self.segments("h265.mp4")
        let changed = try stream.take(initSegment: h265, random: &random)
        #expect(changed && stream.gop.items.isEmpty)
        #expect(throws: RTSPMediaError.self) { _ = try stream.take(initSegment: ByteBuffer(string: "not mp4"), random: &random) }
    }

    @Test func aLoopedStreamKeepsRTPTimeAndNumberingGoing() throws {
        let (initBytes, fragments) = try Self.segments("h265.mp4")
        var stream = MediaStream(name: "cam", mtu: 1400, gopLimit: 16 << 20)
        var random = SystemRandomNumberGenerator()
        _ = try stream.take(initSegment: initBytes, random: &random)
        var last: (sequence: UInt16, timestamp: UInt32)?
        for round in 0..<2 {
            // The file again, with its init segment: the same layout keeps the clients.
            if round == 1 {
                let changed = try stream.take(initSegment: initBytes, random: &random)
                #expect(!changed)
            }
            for bytes in fragments {
                for packet in try stream.take(fragment: bytes, now: .now) {
                    if let last {
                        #expect(packet.sequence == last.sequence &+ 1)
                        // No jump back beyond B-frame reordering (well under a second at 90 kHz).
                        #expect(Int32(bitPattern: packet.timestamp &- last.timestamp) > -90000)
                    }
                    last = (packet.sequence, packet.timestamp)
                }
            }
        }
        #expect(stream.timeline.discontinuities == 1)
    }
}
