import Camflow
import CamflowTesting
import ISOBMFF
import NIOCore
import Testing
@testable import WebPlugin

/// LL-HLS cut from a camera's fragments, as a value: parts at frame
/// boundaries, segments at keyframes, the window, discontinuities, the
/// playlist and what a blocking request waits for.
@Suite struct HLSTimelineTests {
    func timeline(_ name: String, loops: Int = 1, configuration: HLSTimeline.Configuration = .init()) throws -> HLSTimeline {
        let (initBytes, fragments) = try MediaFixtures.looped(name, loops: loops)
        var timeline = HLSTimeline(configuration: configuration)
        try timeline.take(initSegment: initBytes)
        for (index, fragment) in fragments.enumerated() {
            timeline.take(fragment: fragment, discontinuity: false, wallClock: 1_800_000_000 + Double(index) * 2)
        }
        return timeline
    }

    @Test func gopLongFragments_areCutIntoParts_atFrameBoundaries() throws {
        // The camera-like fixture: one 2 s fragment per GOP, 25 fps video and AAC audio.
        let timeline = try timeline("h264-main-aac.mp4")
        let initSegment = try #require(timeline.initSegment)
        let complete = timeline.segments.filter(\.complete)
        #expect(complete.count == 2, "the third keyframe closes the second segment; the third is being filled")
        var videoFrames = 0, audioFrames = 0
        for segment in complete {
            #expect(abs(segment.duration - 2.0) < 0.001)
            #expect(segment.parts.first?.independent == true)
            #expect(segment.parts.dropFirst().allSatisfy { !$0.independent })
            for part in segment.parts {
                #expect(part.duration <= 0.5 + 1e-9)
                let fragment = try Fragment(parsing: part.bytes, initSegment: initSegment)
                let video = fragment.samples.filter { $0.track == 1 }
                #expect(abs(Double(video.reduce(0) { $0 + Int($1.duration) }) / 12_800 - part.duration) < 1e-9)
                #expect(video.first?.isSync == part.independent)
                videoFrames += video.count
                audioFrames += fragment.samples.count - video.count
            }
            // Every part but the last is at least 85 % of the target, as LL-HLS asks.
            #expect(segment.parts.dropLast().allSatisfy { $0.duration >= 0.85 * 0.5 })
        }
        #expect(videoFrames == 100, "4 s at 25 fps")
        #expect(audioFrames >= 180 && audioFrames <= 190, "4 s of 48 kHz AAC, 1024 samples a frame: \(audioFrames)")
    }

    @Test func playlist_carriesTheLowLatencyTags() throws {
        let text = try #require(try timeline("h264-main-aac.mp4").playlist())
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.first == "#EXTM3U")
        for tag in ["#EXT-X-VERSION:9", "#EXT-X-TARGETDURATION:2", "#EXT-X-INDEPENDENT-SEGMENTS", "#EXT-X-MEDIA-SEQUENCE:0",
                    "#EXT-X-PART-INF:PART-TARGET=0.500", "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500",
                    "#EXT-X-MAP:URI=\"init-1.mp4\""] {
            #expect(lines.contains(tag), "\(tag) missing from\n\(text)")
        }
        #expect(lines.filter { $0.hasPrefix("#EXTINF:2.000") }.count == 2)
        #expect(lines.contains("segment-0.m4s") && lines.contains("segment-1.m4s"))
        #expect(lines.contains("#EXT-X-PART:DURATION=0.480,URI=\"part-2.0.m4s\",INDEPENDENT=YES"))
        #expect(lines.last?.hasPrefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-2.") == true)
    }

    @Test func noPlaylist_beforeAWholeSegment() throws {
        let (initBytes, fragments) = try MediaFixtures.split("h264-main-aac.mp4")
        var timeline = HLSTimeline()
        try timeline.take(initSegment: initBytes)
        timeline.take(fragment: fragments[0], discontinuity: false, wallClock: 0)
        #expect(timeline.playlist() == nil, "the target duration is not known before a segment is complete")
        #expect(timeline.lastPart?.msn == 0)
    }

    @Test func window_staysBounded_andSlides() throws {
        var configuration = HLSTimeline.Configuration()
        configuration.windowSegments = 3
        let timeline = try timeline("h264-main-aac.mp4", loops: 10, configuration: configuration)
        #expect(timeline.segments.filter(\.complete).count == 3)
        #expect(timeline.segments.count == 4)
        #expect(timeline.segments.first?.msn == 26, "30 GOPs: segments 26, 27, 28 complete, 29 filling")
        #expect(timeline.segment(25) == nil)
        #expect(try #require(timeline.playlist()).contains("#EXT-X-MEDIA-SEQUENCE:26"))
    }

    @Test func aNewInitSegment_startsADiscontinuity_withItsOwnMap() throws {
        var timeline = try timeline("h264-main-aac.mp4")
        let (otherInit, otherFragments) = try MediaFixtures.split("h264-baseline.mp4")
        try timeline.take(initSegment: otherInit)
        for fragment in otherFragments { timeline.take(fragment: fragment, discontinuity: false, wallClock: 0) }
        let text = try #require(timeline.playlist())
        #expect(text.contains("#EXT-X-MAP:URI=\"init-1.mp4\"") && text.contains("#EXT-X-MAP:URI=\"init-2.mp4\""))
        #expect(text.components(separatedBy: "#EXT-X-DISCONTINUITY\n").count == 2, "\(text)")
        #expect(timeline.inits.keys.sorted() == [1, 2])
        // The same init again (a camera reconnecting) changes nothing.
        try timeline.take(initSegment: otherInit)
        #expect(timeline.initVersion == 2)
    }

    @Test func blockingRequests_waitForTheRightPart() throws {
        let timeline = try timeline("h264-main-aac.mp4")
        // Segments 0 and 1 complete (5 parts each), segment 2 has 4 parts so far.
        #expect(timeline.has(msn: 1, part: nil))
        #expect(timeline.has(msn: 2, part: 3))
        #expect(!timeline.has(msn: 2, part: 4))
        #expect(!timeline.has(msn: 2, part: nil))
        #expect(!timeline.has(msn: 3, part: 0))
        #expect(timeline.has(msn: 0, part: 9), "a later segment answers a part past a segment's end")
    }

    @Test func aStreamWithoutKeyframes_isDropped_notHoarded() throws {
        var configuration = HLSTimeline.Configuration()
        configuration.maxSegmentBytes = 20_000
        // The changing-GOP fixture has a 2 s GOP (1 s to 3 s) of far more than 20 kB.
        let timeline = try timeline("h264-gop-change.mp4", configuration: configuration)
        #expect(timeline.segments.allSatisfy { $0.bytes <= 20_000 })
        #expect(try #require(timeline.playlist()).contains("#EXT-X-DISCONTINUITY"))
    }

    @Test func aFragmentThatDoesNotParse_isCounted_andSkipped() throws {
        var timeline = try timeline("h264-main-aac.mp4")
        let before = timeline.version
        let changed = timeline.take(fragment: ByteBuffer(bytes: [0, 0, 0, 8, 0x6D, 0x6F, 0x6F, 0x66]), discontinuity: false, wallClock: 0)
        #expect(!changed)
        #expect(timeline.rejectedFragments == 1)
        #expect(timeline.version == before)
    }

    @Test func theLatestKeyframe_decodesAlone() throws {
        let timeline = try timeline("h264-main-aac.mp4")
        let keyframe = try #require(timeline.latestKeyframe)
        #expect(keyframe.number == 3)
        #expect(keyframe.width == 640 && keyframe.height == 360)
        let mp4 = try #require(keyframe.mp4)
        let initSegment = try InitSegment(parsing: mp4)
        let fragment = try Fragment(parsing: mp4.getSlice(at: initSegment.bytes.readableBytes, length: mp4.readableBytes - initSegment.bytes.readableBytes)!,
                                    initSegment: initSegment)
        #expect(fragment.samples.count == 1 && fragment.samples[0].isSync)
    }
}

/// Inputs a hostile camera can send, and what blocked requests wait for.
@Suite struct HLSHostileInputTests {
    /// The camera fixture's fragments with every sample's duration set to zero.
    @Test func zeroLengthFrames_stillMakeBoundedParts() async throws {
        let (initBytes, fragments) = try MediaFixtures.split("h264-main-aac.mp4")
        let initSegment = try InitSegment(parsing: initBytes)
        var timeline = HLSTimeline()
        try timeline.take(initSegment: initBytes)
        for bytes in fragments {
            let fragment = try Fragment(parsing: bytes, initSegment: initSegment)
            let zeroed = fragment.samples.map {
                WritableSample(track: $0.track, dts: 0, pts: 0, duration: 0, flags: $0.flags, data: fragment.data(of: $0))
            }
            for _ in 0..<30 {
                timeline.take(fragment: try #require(FragmentWriter.fragment(sequenceNumber: 1, samples: zeroed)),
                              discontinuity: false, wallClock: 0)
            }
            // Seconds of work in all: the parallel tests' pool gets its thread back between fragments.
            await Task.yield()
        }
        let parts = timeline.segments.flatMap(\.parts)
        #expect(!parts.isEmpty)
        for part in parts {
            let frames = try Fragment(parsing: part.bytes, initSegment: initSegment).samples.filter { $0.track == 1 }
            #expect(frames.count <= HLSTimeline.maxPartFrames)
        }
    }

    @Test func initSegmentsWithoutMedia_doNotPileUp() throws {
        let (first, _) = try MediaFixtures.split("h264-main-aac.mp4")
        let (second, _) = try MediaFixtures.split("h264-baseline.mp4")
        var timeline = HLSTimeline()
        for index in 0..<1000 { try timeline.take(initSegment: index.isMultiple(of: 2) ? first : second) }
        #expect(timeline.inits.count == 1)
    }

    @Test func aBlockedRequest_wakesWhenItsPartArrives_andTimesOut_otherwise() async throws {
        let (initBytes, fragments) = try MediaFixtures.split("h264-main-aac.mp4")
        let clock = ManualClock()
        let store = HLSStore(configuration: .init(), maxStreams: 4, clock: clock)
        store.publish(Packet(kind: .initSegment, stream: "cam", payload: initBytes), wallClock: 0)
        store.publish(Packet(kind: .fragment, stream: "cam", payload: fragments[0]), wallClock: 0)
        let msn = try #require(store.read("cam") { $0.lastPart?.msn })
        async let woken = store.wait(for: "cam", timeout: .seconds(20)) { $0.has(msn: msn + 1, part: 0) }
        // The next fragment holds the next keyframe: segment msn + 1 begins.
        try await waitUntil("the waiter is registered", timeout: .seconds(10)) { store.waiting("cam") == 1 }
        store.publish(Packet(kind: .fragment, stream: "cam", payload: fragments[1]), wallClock: 0)
        let wasWoken = await woken
        #expect(wasWoken)
        // Nothing more comes: the wait ends when the clock passes its timeout, not before.
        async let timedOut = store.wait(for: "cam", timeout: .seconds(20)) { $0.has(msn: msn + 5, part: 0) }
        try await waitUntil("the second request waits", timeout: .seconds(10)) { store.waiting("cam") == 1 && clock.sleepers == 1 }
        await clock.advance(by: .milliseconds(19_900))
        #expect(store.waiting("cam") == 1, "still waiting before the timeout")
        await clock.advance(by: .milliseconds(200))
        #expect(await timedOut == false)
        #expect(store.waiting("cam") == 0)
    }

    @Test func waitersPerStream_areBounded() async throws {
        let store = HLSStore(configuration: .init(), maxStreams: 4, maxWaiters: 100, maxWaitersPerStream: 2)
        async let first = store.wait(for: "cam", timeout: .seconds(20)) { _ in false }
        async let second = store.wait(for: "cam", timeout: .seconds(20)) { _ in false }
        try await waitUntil("two waiters", timeout: .seconds(10)) { store.waiting("cam") == 2 }
        #expect(await store.wait(for: "cam", timeout: .seconds(20)) { _ in false } == false, "the third is refused at once")
        store.finish()
        let (one, two) = await (first, second)
        #expect(one == false && two == false)
    }
}
