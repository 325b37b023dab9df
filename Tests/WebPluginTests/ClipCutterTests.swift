import ISOBMFF
import NIOCore
import Testing
@testable import WebPlugin

/// Cutting a wall-clock range out of recordings: the keyframe at or before
/// the start, the end to the frame, and files joined into one timeline.
@Suite struct ClipCutterTests {
    /// The camera-like fixture (6 s: keyframes at 0, 2 and 4 s) as a recording begun at `wallStart`.
    struct File {
        let wallStart: Double
        let initBytes: ByteBuffer
        let initSegment: InitSegment
        let fragments: [Fragment]

        init(wallStart: Double, initBytes: ByteBuffer, initSegment: InitSegment, fragments: [Fragment]) {
            self.wallStart = wallStart
            self.initBytes = initBytes
            self.initSegment = initSegment
            self.fragments = fragments
        }

        init(wallStart: Double) throws {
            let (initBytes, fragments) = try MediaFixtures.split("h264-main-aac.mp4")
            self.wallStart = wallStart
            self.initBytes = initBytes
            self.initSegment = try InitSegment(parsing: initBytes)
            self.fragments = try fragments.map { [initSegment] in try Fragment(parsing: $0, initSegment: initSegment) }
        }
    }

    /// Runs the cutter over `files` and parses what it wrote.
    func cut(_ files: [File], start: Double, end: Double) throws -> (initSegment: InitSegment?, samples: [Sample]) {
        var cutter = ClipCutter(start: start, end: end)
        var out = ByteBuffer()
        for file in files where !cutter.done {
            cutter.beginFile(wallStart: file.wallStart)
            _ = cutter.take(initSegment: file.initBytes, parsed: file.initSegment)
            for fragment in file.fragments where !cutter.done {
                for var buffer in try cutter.take(fragment: fragment) { out.writeBuffer(&buffer) }
            }
        }
        for var buffer in cutter.finish() { out.writeBuffer(&buffer) }
        var parser = StreamingParser()
        parser.append(out)
        var initSegment: InitSegment?
        var samples: [Sample] = []
        while let item = try parser.next() {
            switch item {
            case .initSegment(let segment): initSegment = segment
            case .fragment(let fragment): samples += fragment.samples
            default: break
            }
        }
        return (initSegment, samples)
    }

    @Test func aRangeInsideAFile_startsAtTheKeyframeBefore_andEndsToTheFrame() throws {
        let (_, samples) = try cut([File(wallStart: 1000)], start: 1002.5, end: 1003.5)
        let video = samples.filter { $0.track == 1 }
        #expect(video.first?.isSync == true)
        #expect(video.filter(\.isSync).count == 1)
        // From the keyframe at 2 s to the last frame before 3.5 s: 1.5 s at 25 fps.
        #expect(video.count == 38)
        #expect(video.first?.dts == 0, "the clip's decode times start at zero")
        let audio = samples.filter { $0.track == 2 }
        #expect(!audio.isEmpty)
        #expect(audio.allSatisfy { $0.dts >= 0 && Double($0.dts) / 48_000 < 1.5 })
    }

    @Test func aRangeAcrossTwoFiles_isOneTimeline() throws {
        // Two recordings whose media times both start at zero (a camera that reconnected).
        let (_, samples) = try cut([File(wallStart: 1000), File(wallStart: 1006)], start: 1004.5, end: 1008)
        let video = samples.filter { $0.track == 1 }
        #expect(video.first?.isSync == true)
        #expect(video.count == 50 + 50, "the GOP from 4 s in the first file, and 2 s of the second")
        #expect(zip(video, video.dropFirst()).allSatisfy { $0.dts + Int64($0.duration) == $1.dts },
                "decode times run on across the join without a step")
        #expect(video.filter(\.isSync).count == 2)
    }

    @Test func aStartInAFilesLastGOP_carriesThatGOPIntoTheNextFile() throws {
        // The keyframe before 1005 is at 1004, in the first file's last GOP.
        let (_, samples) = try cut([File(wallStart: 1000), File(wallStart: 1006)], start: 1005, end: 1007)
        let video = samples.filter { $0.track == 1 }
        #expect(video.first?.isSync == true && video.first?.dts == 0)
        #expect(video.count == 50 + 25)
        #expect(zip(video, video.dropFirst()).allSatisfy { $0.dts + Int64($0.duration) == $1.dts })
    }

    @Test func aStartInTheLastGOPOfTheLastFile_isCutToo() throws {
        let (_, samples) = try cut([File(wallStart: 1000)], start: 1005, end: 1010)
        let video = samples.filter { $0.track == 1 }
        #expect(video.count == 50 && video.first?.isSync == true)
    }

    @Test func decodeTimesNoRecordingHolds_endTheClip_withoutATrap() throws {
        // A hostile camera's tfdt near Int64.max, with a 48 kHz audio track beside a 12.8 kHz video one.
        var file = try File(wallStart: 1000)
        let huge = Int64.max - 1_000_000
        var fragments = file.fragments
        for index in fragments.indices {
            for sample in fragments[index].samples.indices {
                fragments[index].samples[sample].dts = huge
                fragments[index].samples[sample].pts = huge
            }
        }
        file = File(wallStart: 1000, initBytes: file.initBytes, initSegment: file.initSegment, fragments: fragments)
        let (initSegment, samples) = try cut([file], start: 1000, end: 1006)
        #expect(initSegment == nil && samples.isEmpty)
        #expect(ClipCutter.ticks(9.6e18 / 48_000, 48_000) == nil)
        #expect(ClipCutter.ticks(.nan, 1) == nil)
    }

    @Test func aStartBeforeTheRecording_beginsAtItsFirstKeyframe() throws {
        let (_, samples) = try cut([File(wallStart: 1000)], start: 990, end: 1001)
        let video = samples.filter { $0.track == 1 }
        #expect(video.first?.isSync == true)
        #expect(video.count == 25)
    }

    @Test func aFileWithAnotherInitSegment_endsTheClip() throws {
        let other = try MediaFixtures.split("h264-baseline.mp4")
        var cutter = ClipCutter(start: 1000, end: 1100)
        cutter.beginFile(wallStart: 1000)
        let first = try File(wallStart: 1000)
        _ = cutter.take(initSegment: first.initBytes, parsed: first.initSegment)
        for fragment in first.fragments { _ = try cutter.take(fragment: fragment) }
        #expect(!cutter.done)
        cutter.beginFile(wallStart: 1006)
        _ = cutter.take(initSegment: other.initSegment, parsed: try InitSegment(parsing: other.initSegment))
        #expect(cutter.done, "a picture size change cannot continue in the same MP4")
    }
}
