@testable import Camflow
import NIOCore
import Testing

@Suite struct QueueBufferTests {
    /// A frame packet; `key` marks a keyframe.
    func frame(_ n: UInt64, key: Bool = false, bytes: Int = 10, dtsMs: Int64? = nil) -> Packet {
        Packet(kind: .frame, stream: "cam", sequence: n, payload: ByteBuffer(repeating: 0, count: bytes),
               media: MediaInfo(timescale: 1000, dts: dtsMs ?? Int64(n) * 40, keyframe: key))
    }

    func drain(_ buffer: inout QueueBuffer) -> [Packet] {
        var out: [Packet] = []
        while let p = buffer.take() { out.append(p) }
        return out
    }

    @Test func block_reportsFullAndKeepsEverything() {
        var buffer = QueueBuffer(limits: .init(packets: 2), policy: .block)
        #expect(buffer.offer(frame(0)) == .accepted(dropped: 0))
        #expect(buffer.offer(frame(1)) == .accepted(dropped: 0))
        #expect(buffer.offer(frame(2)) == .full)
        _ = buffer.take()
        #expect(buffer.offer(frame(2)) == .accepted(dropped: 0))
        #expect(drain(&buffer).map(\.sequence) == [1, 2])
    }

    @Test func dropNewest_dropsTheArrivingPacketAndFlagsTheGap() {
        var buffer = QueueBuffer(limits: .init(packets: 2), policy: .dropNewest)
        for n in 0..<4 { _ = buffer.offer(frame(UInt64(n))) }
        #expect(drain(&buffer).map(\.sequence) == [0, 1])
        _ = buffer.offer(frame(4))
        let next = drain(&buffer)
        #expect(next.map(\.sequence) == [4])
        #expect(next[0].discontinuity)
    }

    @Test func dropOldest_makesRoomAtTheHead() {
        var buffer = QueueBuffer(limits: .init(packets: 2), policy: .dropOldest)
        _ = buffer.offer(frame(0))
        _ = buffer.offer(frame(1))
        #expect(buffer.offer(frame(2)) == .accepted(dropped: 1))
        let out = drain(&buffer)
        #expect(out.map(\.sequence) == [1, 2])
        #expect(out[0].discontinuity, "the new head follows a gap")
    }

    @Test func dropGOP_skipsToNextKeyframe() {
        var buffer = QueueBuffer(limits: .init(packets: 3), policy: .dropGOP)
        _ = buffer.offer(frame(0, key: true))
        _ = buffer.offer(frame(1))
        _ = buffer.offer(frame(2))
        #expect(buffer.offer(frame(3)) == .dropped, "full: the delta frame goes")
        _ = buffer.take()
        _ = buffer.take()
        #expect(buffer.offer(frame(4)) == .dropped, "room again, but still no keyframe")
        #expect(buffer.offer(frame(5, key: true)) == .accepted(dropped: 0))
        #expect(buffer.offer(frame(6)) == .accepted(dropped: 0))
        let out = drain(&buffer)
        #expect(out.map(\.sequence) == [2, 5, 6])
        #expect(out[1].discontinuity && out[1].isKeyframe)
    }

    @Test func maxBytes_limitsButAlwaysTakesIntoAnEmptyQueue() {
        var buffer = QueueBuffer(limits: .init(bytes: 100), policy: .dropNewest)
        #expect(buffer.offer(frame(0, bytes: 500)) == .accepted(dropped: 0), "an empty queue takes any packet")
        #expect(buffer.offer(frame(1, bytes: 1)) == .dropped)
        _ = buffer.take()
        #expect(buffer.offer(frame(2, bytes: 60)) == .accepted(dropped: 0))
        #expect(buffer.offer(frame(3, bytes: 60)) == .dropped)
        #expect(buffer.bytes == 60)
    }

    @Test func maxDuration_usesMediaTime() {
        var buffer = QueueBuffer(limits: .init(duration: .milliseconds(100)), policy: .dropNewest)
        #expect(buffer.offer(frame(0, dtsMs: 0)) == .accepted(dropped: 0))
        #expect(buffer.offer(frame(1, dtsMs: 100)) == .accepted(dropped: 0))
        #expect(buffer.offer(frame(2, dtsMs: 101)) == .dropped)
    }

    @Test func timesFromAPeerAtTheirExtremes_areLimits_notTraps() {
        // zmq-subscribe accepts any 64-bit dts: in nanoseconds it is out of range, and the span overflows.
        #expect(MediaInfo(timescale: 1, dts: .max).dtsNanoseconds == .max)
        #expect(MediaInfo(timescale: 1, dts: .min).dtsNanoseconds == .min)
        var buffer = QueueBuffer(limits: .init(duration: .seconds(10)), policy: .dropOldest)
        func extreme(_ n: UInt64, _ dts: Int64) -> Packet {
            Packet(kind: .frame, stream: "cam", sequence: n, payload: ByteBuffer(repeating: 0, count: 10),
                   media: MediaInfo(timescale: 1, dts: dts, keyframe: true))
        }
        _ = buffer.offer(extreme(0, -9_000_000_000))
        _ = buffer.offer(extreme(1, 9_000_000_000))
        #expect(drain(&buffer).map(\.sequence) == [1], "a span past the limit (and past Int64) drops the oldest")
    }
}
