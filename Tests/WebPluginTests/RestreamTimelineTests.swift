import ISOBMFF
import NIOCore
import Testing
import WebPlugin

/// Each viewer of the camera protocol gets its own timeline from 0, as a
/// camera gives each client: ``FragmentRebase`` as a value, on the committed
/// fixtures played in a loop (decode times far from 0, as a long-running camera's).
@Suite struct RestreamTimelineTests {
    struct Parsed {
        var fragment: Fragment
        /// Per track: first decode time and end.
        var starts: [UInt32: Int64] = [:]
        var ends: [UInt32: Int64] = [:]

        init(_ fragment: Fragment) {
            self.fragment = fragment
            for sample in fragment.samples {
                starts[sample.track] = min(starts[sample.track] ?? .max, sample.dts)
                ends[sample.track] = max(ends[sample.track] ?? .min, sample.dts + Int64(sample.duration))
            }
        }
    }

    func rebased(_ timeline: inout FragmentRebase, _ fragment: ByteBuffer, _ initSegment: InitSegment) throws -> Parsed {
        let out = timeline.rebase(fragment)
        return Parsed(try Fragment(parsing: try #require(out).joined, initSegment: initSegment))
    }

    @Test func aViewerJoiningMidStream_startsAtZero_perTrack_andRunsOnWithoutAGap() throws {
        let (initBytes, fragments) = try MediaFixtures.looped("h264-main-aac.mp4", loops: 3)
        let initSegment = try InitSegment(parsing: initBytes)
        let joinAt = fragments.count / 2 + 1
        let original = try Parsed(Fragment(parsing: fragments[joinAt], initSegment: initSegment))
        #expect(original.starts.count == 2, "video and audio")
        #expect(original.starts.values.allSatisfy { $0 > 0 }, "the source's times are not at 0 here: \(original.starts)")

        var timeline = FragmentRebase()
        timeline.restart(initSegment: initBytes)
        var previousEnds: [UInt32: Int64] = [:]
        var sourceEnds: [UInt32: Int64] = [:]
        for (index, bytes) in fragments[joinAt...].enumerated() {
            let source = try Parsed(Fragment(parsing: bytes, initSegment: initSegment))
            let mine = try rebased(&timeline, bytes, initSegment)
            if index == 0 {
                #expect(mine.starts == [1: 0, 2: 0], "\(mine.starts)")
            } else {
                // Each fragment follows the last as closely as the source's did (a muxer's rounding stays).
                for (track, start) in mine.starts {
                    #expect(start - previousEnds[track]! == source.starts[track]! - sourceEnds[track]!, "fragment \(index)")
                }
            }
            // Only times move: every sample keeps its duration, offset, flags, size and bytes.
            #expect(mine.fragment.sequenceNumber == source.fragment.sequenceNumber)
            #expect(mine.fragment.samples.count == source.fragment.samples.count)
            for (a, b) in zip(source.fragment.samples, mine.fragment.samples) {
                #expect(a.pts - a.dts == b.pts - b.dts && a.duration == b.duration && a.flags == b.flags && a.size == b.size)
                #expect(a.dts - source.starts[a.track]! == b.dts - mine.starts[b.track]!)
                #expect(source.fragment.data(of: a) == mine.fragment.data(of: b))
            }
            previousEnds = mine.ends
            sourceEnds = source.ends
        }
        #expect(timeline.jumpsClosed == 0, "a looped file's times run on: nothing to close")
    }

    @Test func theMdat_isShared_notCopied() throws {
        let (initBytes, fragments) = try MediaFixtures.split("h264-main-aac.mp4")
        var timeline = FragmentRebase()
        timeline.restart(initSegment: initBytes)
        let fragment = fragments[1]
        let rebased = timeline.rebase(fragment)
        let out = try #require(rebased)
        let moofSize = Int(fragment.getInteger(at: fragment.readerIndex, as: UInt32.self)!)
        #expect(out.moof.readableBytes == moofSize)
        #expect(out.rest.readableBytes == fragment.readableBytes - moofSize)
        let original = fragment.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress!) + UInt(moofSize) }
        let shared = out.rest.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress!) }
        #expect(original == shared, "the mdat is a slice of the camera's buffer")
    }

    @Test func aNewInitSegment_startsTheTimelineAgain() throws {
        let (initBytes, fragments) = try MediaFixtures.looped("h264-main-aac.mp4", loops: 2)
        let initSegment = try InitSegment(parsing: initBytes)
        var timeline = FragmentRebase()
        timeline.restart(initSegment: initBytes)
        _ = try rebased(&timeline, fragments[3], initSegment)
        let later = try rebased(&timeline, fragments[4], initSegment)
        #expect(later.starts.values.allSatisfy { $0 > 0 })
        timeline.restart(initSegment: initBytes)   // the camera reconnected
        let again = try rebased(&timeline, fragments[fragments.count - 2], initSegment)
        #expect(again.starts == [1: 0, 2: 0], "\(again.starts)")
    }

    @Test func fragmentsAViewerLost_leaveNoGap_andAudioMovesWithVideo() throws {
        let (initBytes, fragments) = try MediaFixtures.looped("h264-main-aac.mp4", loops: 3)
        let initSegment = try InitSegment(parsing: initBytes)
        var timeline = FragmentRebase()
        timeline.restart(initSegment: initBytes)
        let first = try rebased(&timeline, fragments[1], initSegment)
        let second = try rebased(&timeline, fragments[2], initSegment)
        // A slow viewer's queue dropped fragments 3 to 6: the next one continues where the last ended.
        let afterGap = try rebased(&timeline, fragments[7], initSegment)
        #expect(afterGap.starts[1] == second.ends[1], "video: \(afterGap.starts) after \(second.ends)")
        #expect(timeline.jumpsClosed >= 1)
        // Audio moved by the same time as video, not to its own end: still in step within a frame.
        let scales = Dictionary(uniqueKeysWithValues: initSegment.tracks.map { ($0.id, Double($0.timescale)) })
        func seconds(_ parsed: Parsed, _ track: UInt32) -> Double { Double(parsed.starts[track]!) / scales[track]! }
        func sourceOffset(_ index: Int) throws -> Double {
            let source = try Parsed(Fragment(parsing: fragments[index], initSegment: initSegment))
            return seconds(source, 2) - seconds(source, 1)
        }
        #expect(seconds(first, 2) == 0 && seconds(first, 1) == 0)
        #expect(abs((seconds(afterGap, 2) - seconds(afterGap, 1)) - (try sourceOffset(7) - sourceOffset(1))) < 0.05,
                "A/V offset kept: \(afterGap.starts)")
    }

    @Test func theSourceJumpingBack_keepsTheViewerGoingForward() throws {
        let (initBytes, fragments) = try MediaFixtures.looped("h264-main-aac.mp4", loops: 2)
        let initSegment = try InitSegment(parsing: initBytes)
        var timeline = FragmentRebase()
        timeline.restart(initSegment: initBytes)
        let last = try rebased(&timeline, fragments[fragments.count - 1], initSegment)
        // The source's clock went back to the start without a new init segment.
        let back = try rebased(&timeline, fragments[0], initSegment)
        #expect(back.starts[1] == last.ends[1])
        #expect(back.starts.values.allSatisfy { $0 >= 0 })
    }

    // MARK: Hostile fragments

    /// A one-track fragment: moof(mfhd, traf(tfhd, tfdt, trun)) + mdat, with a chosen tfdt.
    func handmade(tfdtVersion: UInt8, time: UInt64, sampleCount: UInt32 = 2, perSampleDurations: Bool = true,
                  declaredCount: UInt32? = nil) -> ByteBuffer {
        var traf = ByteBuffer()
        traf.writeInteger(UInt32(20)); traf.writeString("tfhd")
        traf.writeInteger(UInt32(0x02_0008)); traf.writeInteger(UInt32(1)); traf.writeInteger(UInt32(3000))
        let tfdtSize = tfdtVersion == 1 ? 20 : 16
        traf.writeInteger(UInt32(tfdtSize)); traf.writeString("tfdt")
        traf.writeInteger(UInt32(tfdtVersion) << 24)
        if tfdtVersion == 1 { traf.writeInteger(time) } else { traf.writeInteger(UInt32(truncatingIfNeeded: time)) }
        let samples = perSampleDurations ? Int(sampleCount) : 0
        traf.writeInteger(UInt32(16 + samples * 4)); traf.writeString("trun")
        traf.writeInteger(UInt32(perSampleDurations ? 0x100 : 0)); traf.writeInteger(declaredCount ?? sampleCount)
        for _ in 0..<samples { traf.writeInteger(UInt32(3000)) }
        var out = ByteBuffer()
        out.writeInteger(UInt32(8 + 16 + 8 + traf.readableBytes)); out.writeString("moof")
        out.writeInteger(UInt32(16)); out.writeString("mfhd"); out.writeInteger(UInt32(0)); out.writeInteger(UInt32(1))
        out.writeInteger(UInt32(8 + traf.readableBytes)); out.writeString("traf")
        out.writeBuffer(&traf)
        out.writeInteger(UInt32(12)); out.writeString("mdat"); out.writeInteger(UInt32(0xABCD))
        return out
    }

    /// The tfdt the timeline gives `fragment`.
    func tfdt(_ timeline: inout FragmentRebase, _ fragment: ByteBuffer) -> UInt64? {
        guard let moof = timeline.rebase(fragment)?.moof, let view = moof.getBytes(at: moof.readerIndex, length: moof.readableBytes),
              let at = (0..<(view.count - 4)).first(where: { view[$0..<$0 + 4].elementsEqual("tfdt".utf8) }) else { return nil }
        return view[at + 4] == 1 ? moof.getInteger(at: moof.readerIndex + at + 8, as: UInt64.self)
                                 : moof.getInteger(at: moof.readerIndex + at + 8, as: UInt32.self).map(UInt64.init)
    }

    @Test func thirtyTwoBitDecodeTimes_areRebasedToo() {
        var timeline = FragmentRebase()
        let t0 = tfdt(&timeline, handmade(tfdtVersion: 0, time: 4_294_960_000))
        #expect(t0 == 0)
        let t6000 = tfdt(&timeline, handmade(tfdtVersion: 0, time: 4_294_966_000))
        #expect(t6000 == 6000)
        // The source's 32-bit clock wraps (to 4704): the viewer's runs on.
        let t12000 = tfdt(&timeline, handmade(tfdtVersion: 0, time: 4_294_972_000))
        #expect(t12000 == 12000)
    }

    @Test func extremeTimesAndCounts_neitherTrapNorGoBackwards() {
        var timeline = FragmentRebase()
        let first = tfdt(&timeline, handmade(tfdtVersion: 1, time: UInt64(Int64.max) - 1000))
        #expect(first == 0)
        // The next one would overflow the source's end: it continues the viewer's timeline instead.
        let second = tfdt(&timeline, handmade(tfdtVersion: 1, time: UInt64.max))
        #expect(second == 6000)
        let third = tfdt(&timeline, handmade(tfdtVersion: 1, time: 0))
        #expect(third == 12000)
        // 2^32 samples of a default duration: a sum that does not fit is not known, not a trap.
        let huge = timeline.rebase(handmade(tfdtVersion: 1, time: 5, sampleCount: .max, perSampleDurations: false))
        #expect(huge != nil)
        // A trun that declares more samples than it holds, a cut moof, no moof: left as they are.
        let overdeclared = timeline.rebase(handmade(tfdtVersion: 1, time: 5, declaredCount: 1 << 30))
        #expect(overdeclared == nil)
        var truncated = handmade(tfdtVersion: 1, time: 5)
        truncated.moveWriterIndex(to: 40)
        let cut = timeline.rebase(truncated)
        #expect(cut == nil)
        let text = timeline.rebase(ByteBuffer(string: "not a fragment at all"))
        #expect(text == nil)
        let empty = timeline.rebase(ByteBuffer())
        #expect(empty == nil)
    }
}

/// A viewer's message budget: a burst, then a steady rate.
@Suite struct RestreamMessageBudgetTests {
    @Test func aBurstPasses_aFloodDoesNot_andTimeRefills() {
        var budget = MessageBudget()
        let start: Int64 = 1_000_000_000
        var passed = 0
        while passed < 10_000, budget.take(at: start) { passed += 1 }
        #expect(passed == MessageBudget.burst, "the burst, then no more")
        // One second later: perSecond more, no more.
        passed = 0
        while passed < 10_000, budget.take(at: start + 1_000_000_000) { passed += 1 }
        #expect(passed == MessageBudget.perSecond)
        // A clock that goes back refills nothing and does not trap.
        let back = budget.take(at: 0)
        #expect(!back)
        // A keep-alive every second for an hour never runs out.
        var steady = MessageBudget()
        var refused = 0
        for second in 0..<3600 where !steady.take(at: start + Int64(second) * 1_000_000_000) { refused += 1 }
        #expect(refused == 0)
    }
}
