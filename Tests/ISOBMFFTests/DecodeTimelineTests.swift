import ISOBMFF
import Testing

/// Decode times rebuilt from presentation times in decode order.
@Suite struct DecodeTimelineTests {
    func run(_ pts: [Int64], learningFrames: Int = 8) -> (out: [DecodeTimeline<Int>.Timed], timeline: DecodeTimeline<Int>) {
        var timeline = DecodeTimeline<Int>(learningFrames: learningFrames)
        var out: [DecodeTimeline<Int>.Timed] = []
        for (index, value) in pts.enumerated() { out += timeline.push(index, pts: value) }
        out += timeline.flush()
        return (out, timeline)
    }

    func checkInvariants(_ out: [DecodeTimeline<Int>.Timed], count: Int) {
        #expect(out.map(\.frame) == Array(0..<count), "every frame once, in decode order")
        for (a, b) in zip(out, out.dropFirst()) {
            #expect(a.dts < b.dts)
            #expect(a.dts + a.duration == b.dts)
        }
        for timed in out { #expect(timed.dts <= timed.pts && timed.duration > 0) }
    }

    @Test func withoutBFrames_decodeTimeIsPresentationTime() {
        let pts = (0..<20).map { Int64($0) * 3000 }
        let (out, timeline) = run(pts)
        checkInvariants(out, count: 20)
        #expect(timeline.reorder == 0)
        #expect(out.map(\.dts) == pts)
        #expect(out.last?.duration == 3000)
    }

    @Test func ipbb_learnsReorderOfOne_andShiftsByOneFrame() {
        // I P B B P B B ...: presentation order 0 3 1 2 6 4 5 ...
        var pts: [Int64] = [0]
        for group in 0..<10 { pts += [3, 1, 2].map { Int64(group * 3 + $0) * 3000 } }
        let (out, timeline) = run(pts)
        checkInvariants(out, count: pts.count)
        #expect(timeline.reorder == 1)
        #expect(out.first?.dts == -3000)
        #expect(timeline.lateFrames == 0)
    }

    @Test func pyramid_learnsReorderOfTwo() {
        // I P B b b (hierarchical): 0 4 2 1 3 ...
        var pts: [Int64] = [0]
        for group in 0..<8 { pts += [4, 2, 1, 3].map { Int64(group * 4 + $0) * 1000 } }
        let (out, timeline) = run(pts)
        checkInvariants(out, count: pts.count)
        #expect(timeline.reorder == 2)
        #expect(timeline.heldFrames == 0)
    }

    @Test func shortStream_flushesWhatItHolds() {
        let (out, timeline) = run([0, 2000, 1000])
        checkInvariants(out, count: 3)
        #expect(timeline.reorder == 1)
    }

    @Test func deeperReorderThanLearned_staysStrictlyIncreasing_andIsCounted() {
        // Learned depth 0 from the first frames, then B-frames appear.
        let pts: [Int64] = [0, 1, 2, 3, 4, 5, 6, 7, 10, 8, 9, 11]
        let (out, timeline) = run(pts)
        #expect(out.map(\.frame) == Array(0..<pts.count))
        for (a, b) in zip(out, out.dropFirst()) { #expect(a.dts < b.dts) }
        #expect(timeline.lateFrames > 0)
    }

    @Test func memoryIsBounded_overALongStream() {
        var timeline = DecodeTimeline<Int>()
        var given = 0
        for index in 0..<20_000 {
            given += timeline.push(index, pts: Int64(index) * 3000 + (index % 3 == 1 ? 6000 : 0)).count
            #expect(timeline.heldFrames <= 8)
        }
        #expect(given + timeline.flush().count == 20_000)
    }
}
