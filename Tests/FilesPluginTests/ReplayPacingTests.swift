import CamflowTesting
import Camflow
@testable import FilesPlugin
import Foundation
import NIOCore
import Testing

/// When `file-replay` sends what: the real-time schedule as a value, and
/// `rate` pacing within a block.
@Suite struct ReplayPacingTests {
    /// An 8 s file of four 2 s fragments, cut from the tenth minute of a stream.
    private func pass(_ schedule: inout RealtimeSchedule, durations: Bool = true) -> [Double] {
        (0..<4).map { schedule.fragment(start: 600 + 2 * Double($0), duration: durations ? 2 : 0) }
    }

    @Test func realtime_eachFragmentGoesWhenItsMediaHasPassed_andALoopPassLastsTheFile() {
        var schedule = RealtimeSchedule()
        var due = pass(&schedule)
        schedule.newPass()
        due += pass(&schedule)
        schedule.newPass()
        due += pass(&schedule)
        #expect(due == [2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24])
        // 50 frames a fragment (25 fps): 24 s of looping sends 24 s of video, not 30.
        #expect(due.filter { $0 <= 24 }.count * 50 == 600)
    }

    @Test func realtime_fragmentsWithoutDurations_keepTheStepBetweenThem_acrossPasses() {
        var schedule = RealtimeSchedule()
        let first = pass(&schedule, durations: false)
        schedule.newPass()
        let second = pass(&schedule, durations: false)
        #expect(first == [0, 2, 4, 6])
        #expect(second == [8, 10, 12, 14], "the next pass starts one fragment after the last, not at once")
    }

    @Test func realtime_hostileTimestamps_neverWaitLongerThanTheBound() {
        var schedule = RealtimeSchedule()
        #expect(schedule.fragment(start: 0, duration: 1) == 1)
        #expect(schedule.fragment(start: 1e15, duration: 1) == 1 + RealtimeSchedule.maxStep)
        #expect(schedule.fragment(start: 5, duration: 1) == 1 + RealtimeSchedule.maxStep, "a step back goes at once")
        #expect(schedule.fragment(start: 1e308, duration: 1e308) == 1 + 2 * RealtimeSchedule.maxStep, "infinity waits the bound")
        #expect(schedule.fragment(start: .nan, duration: .infinity) == 1 + 2 * RealtimeSchedule.maxStep)
        #expect(schedule.fragment(start: 6, duration: 1) == 2 + 2 * RealtimeSchedule.maxStep, "times that read again start over")
    }

    @Test func rate_waitsAreMeasuredOnThePipelinesClock() async {
        let clock = ManualClock()
        var pacer = RatePacer(bytesPerSecond: 1000)
        var waits: [Duration?] = [pacer.delay(forSending: 500, now: clock.now), pacer.delay(forSending: 500, now: clock.now)]
        await clock.advance(by: .milliseconds(800))
        waits.append(pacer.delay(forSending: 500, now: clock.now))
        await clock.advance(by: .seconds(1))
        waits.append(pacer.delay(forSending: 500, now: clock.now))
        // The first piece goes at once; then waits on the clock's time, not the machine's.
        #expect(waits == [nil, .milliseconds(500), .milliseconds(200), nil])
    }

    @Test func rate_piecesAreWholeBoxes_withinTheBudget_orOneUnit() {
        var file = ByteBuffer()
        func box(_ type: String, _ size: Int) {
            file.writeInteger(UInt32(size))
            file.writeString(type)
            file.writeRepeatingByte(0, count: size - 8)
        }
        box("ftyp", 28); box("moov", 1000); box("moof", 500); box("mdat", 40_000); box("moof", 500); box("mdat", 100)
        box("mfra", 16)
        var lengths: [Int] = []
        while file.readableBytes > 0 {
            let length = FileReplay.wholeUnits(of: file, upTo: 10_000)
            lengths.append(length)
            file.moveReaderIndex(forwardBy: length)
        }
        #expect(lengths == [1028, 40_500, 616], "ftyp+moov; a fragment beyond the budget whole; what fits together")
        #expect(FileReplay.pieceBytes(rate: 1) == 1024 && FileReplay.pieceBytes(rate: 1e9) == 65536)
        #expect(FileReplay.pieceBytes(rate: 400_000) == 20_000)
    }

    @Test func rate_aFileSmallerThanABlock_isPacedNotSentInOneBurst() async throws {
        let path = fixtureDirectory.appendingPathComponent("h264-main-aac.mp4").path
        let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        let clock = ContinuousClock()
        let start = clock.now
        let run = try await TestHarness(plugins: [FilesPlugin.self]).run([
            NodeSpec(id: "replay", type: "file-replay", options: ["path": .scalar(path), "rate": "1MB/s"]),
        ], collect: ["replay"])
        let elapsed = clock.now - start
        let packets = run.packets["replay"] ?? []
        #expect(packets.count == 5, "\(packets.map(\.payload.readableBytes))")
        #expect(packets.reduce(0) { $0 + $1.payload.readableBytes } == size)
        let last = packets.last?.payload.readableBytes ?? 0
        // The last packet goes when the bytes before it have gone at 1 MB/s.
        #expect(elapsed >= .milliseconds(Int64((size - last) / 1000) - 10), "\(elapsed)")
    }
}
