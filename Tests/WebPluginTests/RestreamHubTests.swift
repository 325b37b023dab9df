import CamflowTesting
import Camflow
import NIOCore
import Testing
import Synchronization
import WebPlugin

/// The hub between the pipeline and the viewers: streams by name, joining
/// at the latest keyframe, `stop`, and the end of the stream.
@Suite struct RestreamHubTests {
    func packet(_ kind: PacketKind, stream: String, keyframe: Bool = false, tag: UInt8) -> Packet {
        Packet(kind: kind, stream: stream, payload: ByteBuffer(bytes: [tag, 0, 0, 0]),
               media: MediaInfo(track: 1, codec: "avc1.4D4033", timescale: 1000, keyframe: keyframe))
    }

    /// Everything queued for a viewer now (stops at the first wait).
    func queued(_ hub: RestreamHub, _ id: Int, count: Int) async -> [String] {
        var seen: [String] = []
        for _ in 0..<count {
            guard let item = await hub.next(id) else { break }
            switch item {
            case .text(let text): seen.append(text)
            case .initSegment(let buffer): seen.append("init\(buffer.getInteger(at: 0, as: UInt8.self)!)")
            case .fragment(let buffer, _, _): seen.append("f\(buffer.getInteger(at: 0, as: UInt8.self)!)")
            }
        }
        return seen
    }

    @Test func viewersGetTheirStream_fromTheLatestKeyframe() async {
        let hub = RestreamHub(viewerQueueLimit: 1 << 20, gopCacheLimit: 1 << 20)
        let early = hub.attach(stream: nil, remote: "test")  // before any stream: gets the first one
        #expect(hub.start(early) == nil)
        hub.publish(packet(.initSegment, stream: "a", tag: 1))
        hub.publish(packet(.initSegment, stream: "b", tag: 2))
        hub.publish(packet(.fragment, stream: "a", tag: 10))             // no keyframe yet: skipped
        hub.publish(packet(.fragment, stream: "a", keyframe: true, tag: 11))
        hub.publish(packet(.fragment, stream: "b", keyframe: true, tag: 20))
        hub.publish(packet(.fragment, stream: "a", tag: 12))
        #expect(await queued(hub, early, count: 3) == ["init1", "f11", "f12"])

        let late = hub.attach(stream: "b", remote: "test")
        #expect(hub.start(late) == nil)
        hub.publish(packet(.fragment, stream: "b", tag: 21))
        #expect(await queued(hub, late, count: 3) == ["init2", "f20", "f21"])

        let lost = hub.attach(stream: "c", remote: "test")
        #expect(hub.start(lost) == "error: no stream 'c'; streams: a, b")
        #expect(hub.snapshot().streams.map(\.name) == ["a", "b"])
    }

    @Test func stop_thenTheEndOfTheStream_endsTheViewer() async {
        let hub = RestreamHub(viewerQueueLimit: 1 << 20, gopCacheLimit: 1 << 20)
        hub.publish(packet(.initSegment, stream: "a", tag: 1))
        let id = hub.attach(stream: "a", remote: "test")
        _ = hub.start(id)
        #expect(await queued(hub, id, count: 1) == ["init1"])
        hub.stop(id)
        hub.publish(packet(.fragment, stream: "a", keyframe: true, tag: 11))
        hub.finish()
        #expect(await hub.next(id) == nil, "nothing after stop, and the stream ended")
        hub.detach(id)
        await hub.waitUntilViewersLeft()
    }

    @Test func aWriterWaitingOnAnEmptyQueue_learnsThatTheStreamEnded() async throws {
        let hub = RestreamHub(viewerQueueLimit: 1 << 20, gopCacheLimit: 1 << 20)
        let id = hub.attach(stream: "a", remote: "test")
        let ended = Flag()
        let writer = Task {
            let item = await hub.next(id)
            ended.set()
            return item
        }
        // Let the writer reach its wait first (a test that finishes first passes trivially).
        for _ in 0..<100 { await Task.yield() }
        hub.finish()
        try await waitUntil("the waiting writer returns", timeout: .seconds(10)) { ended.isSet }
        #expect(await writer.value == nil)
    }

    @Test func aNewInitSegment_reachesViewers_beforeTheNextKeyframe() async {
        let hub = RestreamHub(viewerQueueLimit: 1 << 20, gopCacheLimit: 1 << 20)
        hub.publish(packet(.initSegment, stream: "a", tag: 1))
        hub.publish(packet(.fragment, stream: "a", keyframe: true, tag: 11))
        let id = hub.attach(stream: nil, remote: "test")
        _ = hub.start(id)
        hub.publish(packet(.initSegment, stream: "a", tag: 1))           // the same: ignored
        hub.publish(packet(.initSegment, stream: "a", tag: 3))           // a reconnect with new parameters
        hub.publish(packet(.fragment, stream: "a", tag: 12))             // belongs to the old GOP: skipped
        hub.publish(packet(.fragment, stream: "a", keyframe: true, tag: 13))
        #expect(await queued(hub, id, count: 4) == ["init1", "f11", "init3", "f13"])
    }
}

final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}
