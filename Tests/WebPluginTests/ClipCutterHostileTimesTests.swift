@testable import ISOBMFF
import NIOCore
import Testing
@testable import WebPlugin

/// Decode times a hostile camera can put in a recording, fed to the clip
/// cutter directly (the parser refuses them, an older recording or another
/// reader may not): each is passed over, never a trap.
@Suite struct ClipCutterHostileTimesTests {
    let cutter = ClipCutterTests()

    /// The fixture as a recording begun at `wallStart`, with the samples of
    /// fragment `index` given decode and presentation time `time`.
    func file(wallStart: Double, fragment index: Int, time: Int64) throws -> ClipCutterTests.File {
        let file = try ClipCutterTests.File(wallStart: wallStart)
        var fragments = file.fragments
        for sample in fragments[index].samples.indices {
            fragments[index].samples[sample].dts = time
            fragments[index].samples[sample].pts = time
        }
        return ClipCutterTests.File(wallStart: wallStart, initBytes: file.initBytes, initSegment: file.initSegment,
                                    fragments: fragments)
    }

    @Test(arguments: [Int64.min, Int64.min + 1, Int64.max, -(Int64(1) << 52), Int64(1) << 52])
    func extremeDecodeTimes_arePassedOver(time: Int64) throws {
        let count = try ClipCutterTests.File(wallStart: 1000).fragments.count
        for index in [0, count - 1] {
            let hostile = try file(wallStart: 1000, fragment: index, time: time)
            let (initSegment, samples) = try cutter.cut([hostile, ClipCutterTests.File(wallStart: 1006)],
                                                        start: 1000, end: 1012)
            #expect(initSegment != nil, "time \(time) in fragment \(index): the other frames still make a clip")
            #expect(!samples.isEmpty)
            #expect(samples.allSatisfy { $0.dts.magnitude < ClipCutter.maxTicks.magnitude })
        }
    }

    @Test func anEndBeyond64Bits_isNotComputed() {
        let sample = WritableSample(track: 1, dts: .max - 10, pts: .max - 10, duration: 100, flags: 0, data: ByteBuffer())
        #expect(ClipCutter.end(of: sample) == nil)
        let fine = WritableSample(track: 1, dts: -100, pts: -100, duration: 100, flags: 0, data: ByteBuffer())
        #expect(ClipCutter.end(of: fine) == 0)
    }
}

/// Frames without bytes, which the parser accepts where the mdat has bytes
/// for them to outnumber: a clip leaves them out and still reads back.
@Suite struct ClipCutterEmptyFramesTests {
    @Test func framesWithoutBytes_giveTheirDurationToTheFrameBefore() {
        func sample(_ track: UInt32, _ dts: Int64, _ bytes: Int) -> WritableSample {
            WritableSample(track: track, dts: dts, pts: dts, duration: 10, flags: 0,
                           data: ByteBuffer(repeating: 1, count: bytes))
        }
        let kept = ClipCutter.withoutEmptyFrames([sample(2, 0, 0), sample(1, 0, 5), sample(2, 10, 3), sample(1, 10, 0),
                                                  sample(1, 20, 0), sample(1, 30, 4)])
        #expect(kept.map(\.track) == [1, 2, 1])
        #expect(kept.map(\.duration) == [30, 10, 10], "the empty frames' 20 ticks went to the one before them")
        #expect(kept.map(\.dts) == [0, 10, 30])
    }
}
