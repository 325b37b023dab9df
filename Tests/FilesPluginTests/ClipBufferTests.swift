import Camflow
@testable import FilesPlugin
import NIOCore
import Testing

/// The clip decisions of event-record, without tasks or files. Fragments
/// last 1 s and arrive at their end; a keyframe starts every `gop` seconds.
@Suite struct ClipBufferTests {
    private func fragment(_ second: Int, gop: Int = 2, bytes: Int = 100) -> ClipBuffer.Fragment {
        var payload = ByteBuffer()
        payload.writeRepeatingByte(0, count: bytes)
        return ClipBuffer.Fragment(packet: Packet(kind: .fragment, stream: "cam", payload: payload), start: Double(second),
                                   end: Double(second + 1), keyframe: second % gop == 0, arrival: UInt64(second + 1) * 1_000_000_000)
    }

    private func feed(_ buffer: inout ClipBuffer, _ seconds: Range<Int>, gop: Int = 2) -> [ClipBuffer.Action] {
        seconds.flatMap { buffer.fragment(fragment($0, gop: gop)) }
    }

    @Test func aTrigger_startsAtTheLatestKeyframeCoveringThePreRoll_andEndsAfterThePostRoll() throws {
        var buffer = ClipBuffer(preRoll: 3, postRoll: 4, maxClip: 300, maxBytes: 1 << 20)
        _ = feed(&buffer, 0..<10)
        // At media time 10: the pre-roll reaches back to 7, the keyframe at or before it is at 6.
        let started = buffer.trigger(arrival: 10_000_000_000, reason: "alarm area1")
        guard case .start(let clip, let fragments)? = started.first else { Issue.record("no clip started"); return }
        #expect(clip.start == 6 && fragments.first?.keyframe == true && fragments.map(\.start) == [6, 7, 8, 9])
        #expect(clip.firstTrigger - clip.start >= 3)
        // A second trigger at 12 extends the clip to 16: one clip, not two.
        var actions = feed(&buffer, 10..<12)
        #expect(buffer.trigger(arrival: 12_000_000_000, reason: "alarm pir").isEmpty)
        actions += feed(&buffer, 12..<20)
        let written = actions.compactMap { if case .write(let f) = $0 { f.start } else { nil } }
        #expect(written == (10..<16).map(Double.init))
        let finished = actions.compactMap { if case .finish(let clip) = $0 { clip } else { nil } }
        #expect(finished.count == 1)
        #expect(finished.first?.end == 16 && finished.first?.triggers == 2 && finished.first?.lastTrigger == 12)
        #expect(buffer.clip == nil)
    }

    @Test func thePreRollBuffer_holdsWholeGOPsCoveringThePreRollAndNoMore() {
        var buffer = ClipBuffer(preRoll: 3, postRoll: 4, maxClip: 300, maxBytes: 1 << 20)
        _ = feed(&buffer, 0..<100)
        // Newest end is 100: keep from the keyframe at or before 97, which is 96.
        #expect(buffer.held.first?.start == 96 && buffer.held.first?.keyframe == true)
        #expect(buffer.heldBytes == 400)
    }

    @Test func aGOPLongerThanThePreRoll_isReportedOnce_andTheClipReachesBackToItsKeyframe() {
        var buffer = ClipBuffer(preRoll: 3, postRoll: 1, maxClip: 300, maxBytes: 1 << 20)
        let actions = feed(&buffer, 0..<25, gop: 10)
        #expect(actions.filter { if case .longGOP = $0 { true } else { false } }.count == 1)
        let started = buffer.trigger(arrival: 25_000_000_000, reason: "alarm")
        guard case .start(let clip, _)? = started.first else { Issue.record("no clip started"); return }
        #expect(clip.start == 20)
    }

    @Test func theByteLimit_dropsTheOldestGOPs() {
        var buffer = ClipBuffer(preRoll: 30, postRoll: 1, maxClip: 300, maxBytes: 450)
        let actions = feed(&buffer, 0..<10)
        #expect(buffer.heldBytes <= 450 && buffer.held.first?.keyframe == true)
        #expect(actions.contains { if case .bufferFull = $0 { true } else { false } })
    }

    @Test func aClipEndsAtMaxClip_andATriggerBeforeAnyMediaRecordsNothing() {
        var buffer = ClipBuffer(preRoll: 1, postRoll: 100, maxClip: 5, maxBytes: 1 << 20)
        #expect(buffer.trigger(arrival: 1, reason: "alarm").isEmpty)
        _ = feed(&buffer, 0..<4)
        _ = buffer.trigger(arrival: 4_000_000_000, reason: "alarm")
        let actions = feed(&buffer, 4..<20)
        let finished = actions.compactMap { if case .finish(let clip) = $0 { clip } else { nil } }
        #expect(finished.count == 1)
        #expect(finished.first.map { $0.end - $0.start } ?? 99 <= 5)
    }

    @Test func triggersMatchNamesAndFields_butNeverAnAlarmThatEnded() throws {
        let pir = try #require(EventRecord.Trigger(parsing: "alarm source=pir"))
        #expect(pir.matches(Event("alarm", [("source", .string("pir")), ("active", .bool(true))])))
        #expect(!pir.matches(Event("alarm", [("source", .string("area1"))])))
        #expect(!pir.matches(Event("alarm", [("source", .string("pir")), ("active", .bool(false))])))
        #expect(EventRecord.Trigger(parsing: "=x") == nil && EventRecord.Trigger(parsing: "alarm source") == nil)
    }
}

/// What a hostile or broken stream does to the clip decisions.
@Suite struct ClipBufferHostileTests {
    private func fragment(_ start: Double, keyframe: Bool, arrival: UInt64, bytes: Int = 100) -> ClipBuffer.Fragment {
        var payload = ByteBuffer()
        payload.writeRepeatingByte(0, count: bytes)
        return ClipBuffer.Fragment(packet: Packet(kind: .fragment, stream: "cam", payload: payload), start: start, end: start + 1,
                                   keyframe: keyframe, arrival: arrival)
    }

    @Test func oneKeyframeThenNone_staysWithinTheByteLimit() {
        var buffer = ClipBuffer(preRoll: 5, postRoll: 5, maxClip: 300, maxBytes: 1000)
        var full = 0
        for second in 0..<10_000 {
            let actions = buffer.fragment(fragment(Double(second), keyframe: second == 0, arrival: UInt64(second) * 1_000_000_000))
            full += actions.filter { if case .bufferFull = $0 { true } else { false } }.count
            #expect(buffer.heldBytes <= 1000)
        }
        #expect(full >= 1 && buffer.held.isEmpty, "nothing is held until a keyframe comes again")
    }

    @Test func timestampsSteppingBack_endTheClip_andMaxClipHoldsInArrivalTime() {
        var buffer = ClipBuffer(preRoll: 1, postRoll: 100, maxClip: 10, maxBytes: 1 << 20)
        for second in 0..<4 { _ = buffer.fragment(fragment(Double(second), keyframe: true, arrival: UInt64(second + 1) * 1_000_000_000)) }
        _ = buffer.trigger(arrival: 4_000_000_000, reason: "alarm")
        // The clock resets to 0: the open clip ends rather than waiting days for media time to catch up.
        let back = buffer.fragment(fragment(0, keyframe: true, arrival: 5_000_000_000))
        #expect(back.contains { if case .finish = $0 { true } else { false } })
        #expect(buffer.clip == nil)
        // Timestamps that stand still: the clip still ends after max-clip of arrival time.
        _ = buffer.trigger(arrival: 5_000_000_000, reason: "alarm")
        var finished = false
        for step in 1...30 where !finished {
            let actions = buffer.fragment(fragment(0.5, keyframe: false, arrival: UInt64(5 + step) * 1_000_000_000))
            finished = actions.contains { if case .finish = $0 { true } else { false } }
        }
        #expect(finished)
    }
}
