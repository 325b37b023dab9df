import Camflow
import NIOCore
import Testing
import WebPlugin
import MediaCache

/// The per-viewer queue's policy, without sockets or tasks.
@Suite struct ViewerQueueTests {
    /// A fragment of `size` bytes whose first byte tells it apart.
    func fragment(_ id: UInt8, size: Int = 100) -> ByteBuffer {
        var buffer = ByteBuffer(repeating: 0, count: size)
        buffer.setInteger(id, at: 0)
        return buffer
    }

    /// Ids of the fragments, in the order the queue gives them out.
    func drain(_ queue: inout ViewerQueue) -> [UInt8] {
        var ids: [UInt8] = []
        while let item = queue.pop() {
            if case .fragment(let buffer, _, _) = item { ids.append(buffer.getInteger(at: 0)!) }
        }
        return ids
    }

    @Test func keepsEverything_whileItFits() {
        var queue = ViewerQueue(limit: 1000)
        for id in 1...5 {
            let accepted = queue.push(fragment: fragment(UInt8(id)), startsGOP: id == 1)
            #expect(accepted)
        }
        #expect(queue.bytes == 500)
        #expect(drain(&queue) == [1, 2, 3, 4, 5])
        #expect(queue.bytes == 0)
        #expect(queue.droppedFragments == 0)
    }

    @Test func overflow_dropsQueuedGOPsWhole_andResumesAtAKeyframe() {
        var queue = ViewerQueue(limit: 600)
        // GOP A (1, 2) is in flight: 1 already went out.
        queue.push(fragment: fragment(1), startsGOP: true)
        queue.push(fragment: fragment(2), startsGOP: false)
        _ = queue.pop()
        // GOP B (3, 4, 5) and GOP C (6, 7) queue up behind it.
        for id: UInt8 in 3...7 { queue.push(fragment: fragment(id), startsGOP: id == 3 || id == 6) }
        // 8 belongs to GOP C and does not fit: B and C go whole, A's tail stays.
        do { let accepted = queue.push(fragment: fragment(8), startsGOP: false); #expect(!accepted) }
        #expect(queue.skipping)
        // The rest of C is skipped; D starts clean.
        do { let accepted = queue.push(fragment: fragment(9), startsGOP: false); #expect(!accepted) }
        do { let accepted = queue.push(fragment: fragment(10), startsGOP: true); #expect(accepted) }
        do { let accepted = queue.push(fragment: fragment(11), startsGOP: false); #expect(accepted) }
        #expect(drain(&queue) == [2, 10, 11])
        #expect(queue.droppedGOPs == 2)
        #expect(queue.droppedFragments == 7)
    }

    @Test func aKeyframeThatOverflows_replacesTheQueuedGOPs() {
        var queue = ViewerQueue(limit: 300)
        for id: UInt8 in 1...3 { queue.push(fragment: fragment(id), startsGOP: id == 1) }
        // Nothing went out yet: GOP 1-3 is queued, not in flight, so it goes.
        do { let accepted = queue.push(fragment: fragment(4), startsGOP: true); #expect(accepted) }
        #expect(drain(&queue) == [4])
        #expect(queue.droppedGOPs == 1)
        #expect(queue.droppedFragments == 3)
    }

    @Test func aGOPLargerThanTheQueue_losesItsTail_andTheViewerResumesAtTheNextKeyframe() {
        var queue = ViewerQueue(limit: 250)
        queue.push(fragment: fragment(1), startsGOP: true)
        _ = queue.pop()
        queue.push(fragment: fragment(2), startsGOP: false)
        queue.push(fragment: fragment(3), startsGOP: false)
        do { let accepted = queue.push(fragment: fragment(4), startsGOP: false); #expect(!accepted) }
        do { let accepted = queue.push(fragment: fragment(5), startsGOP: false); #expect(!accepted) }
        // The next keyframe does not fit beside that tail either: the tail goes.
        do { let accepted = queue.push(fragment: fragment(6), startsGOP: true); #expect(accepted) }
        #expect(drain(&queue) == [6])
        #expect(queue.droppedGOPs == 1)
        #expect(queue.droppedFragments == 4)
    }

    @Test func controlItems_areNeverDropped_andKeepTheirPlace() {
        var queue = ViewerQueue(limit: 200)
        queue.pushControl(.initSegment(fragment(100, size: 50)))
        queue.push(fragment: fragment(1), startsGOP: true)
        queue.pushControl(.text("error: something"))
        queue.push(fragment: fragment(2), startsGOP: true)
        #expect(queue.items.count == 3, "fragment 2 does not fit beside the init segment and fragment 1")
        var kinds: [String] = []
        while let item = queue.pop() {
            switch item {
            case .initSegment: kinds.append("init")
            case .text(let text): kinds.append(text)
            case .fragment(let buffer, _, _): kinds.append("f\(buffer.getInteger(at: 0, as: UInt8.self)!)")
            }
        }
        #expect(kinds == ["init", "error: something", "f2"])
    }

    @Test func startAtNextGOP_skipsWithoutCountingDrops() {
        var queue = ViewerQueue(limit: 1000)
        queue.startAtNextGOP()
        do { let accepted = queue.push(fragment: fragment(1), startsGOP: false); #expect(!accepted) }
        do { let accepted = queue.push(fragment: fragment(2), startsGOP: true); #expect(accepted) }
        #expect(drain(&queue) == [2])
        #expect(queue.droppedGOPs == 0)
    }

    @Test func clearFragments_keepsControlItems() {
        var queue = ViewerQueue(limit: 1000)
        queue.pushControl(.text("hello"))
        queue.push(fragment: fragment(1), startsGOP: true)
        queue.clearFragments()
        #expect(queue.items == [.text("hello")])
        #expect(queue.bytes == 5)
    }
}

/// What a stream keeps for viewers that join.
@Suite struct StreamCacheTests {
    func packet(_ kind: PacketKind, keyframe: Bool? = nil, codec: String? = "avc1.4D4033", size: Int = 10) -> Packet {
        Packet(kind: kind, stream: "cam", payload: ByteBuffer(repeating: UInt8(size & 0xff), count: size),
               media: MediaInfo(track: 1, codec: codec, timescale: 1000, duration: 500, keyframe: keyframe,
                                width: 640, height: 360))
    }

    @Test func keepsTheInit_andTheFragmentsSinceTheLatestKeyframe() {
        var cache = StreamCache(name: "cam", limit: 1 << 20)
        do { let taken = cache.take(initSegment: packet(.initSegment, codec: "avc1.4D4033, mp4a.40.2")); #expect(taken) }
        do { let taken = cache.take(initSegment: packet(.initSegment, codec: "avc1.4D4033, mp4a.40.2")); #expect(!taken, "the same bytes again") }
        do { let taken = cache.take(fragment: packet(.fragment, keyframe: false, size: 11)); #expect(!taken, "before any keyframe") }
        #expect(cache.gop.isEmpty)
        do { let taken = cache.take(fragment: packet(.fragment, keyframe: true, size: 12)); #expect(taken) }
        do { let taken = cache.take(fragment: packet(.fragment, keyframe: false, size: 13)); #expect(!taken) }
        #expect(cache.gop.map(\.readableBytes) == [12, 13])
        do { let taken = cache.take(fragment: packet(.fragment, keyframe: true, size: 14)); #expect(taken) }
        #expect(cache.gop.map(\.readableBytes) == [14])
        #expect(cache.fragments == 4)
        #expect(cache.gops == 2)
        #expect(cache.codecs == "avc1.4D4033, mp4a.40.2")
        #expect(cache.width == 640)
        #expect(cache.mediaSeconds == 2.0)
    }

    @Test func anAudioOnlyFragment_doesNotStartAGOP_whenTheStreamHasVideo() {
        var cache = StreamCache(name: "cam", limit: 1 << 20)
        _ = cache.take(initSegment: packet(.initSegment, codec: "avc1.4D4033, mp4a.40.2", size: 20))
        do { let taken = cache.take(fragment: packet(.fragment, keyframe: true, codec: "mp4a.40.2")); #expect(!taken) }
        var audioOnly = StreamCache(name: "radio", limit: 1 << 20)
        _ = audioOnly.take(initSegment: packet(.initSegment, codec: "mp4a.40.2", size: 20))
        do { let taken = audioOnly.take(fragment: packet(.fragment, keyframe: true, codec: "mp4a.40.2")); #expect(taken) }
    }

    @Test func aGOPBeyondTheLimit_isNotKept() {
        var cache = StreamCache(name: "cam", limit: 25)
        _ = cache.take(initSegment: packet(.initSegment))
        _ = cache.take(fragment: packet(.fragment, keyframe: true, size: 10))
        _ = cache.take(fragment: packet(.fragment, keyframe: false, size: 10))
        #expect(cache.gop.count == 2)
        _ = cache.take(fragment: packet(.fragment, keyframe: false, size: 10))
        #expect(cache.gop.isEmpty, "a joiner waits for the next keyframe instead")
        _ = cache.take(fragment: packet(.fragment, keyframe: false, size: 10))
        #expect(cache.gop.isEmpty)
        _ = cache.take(fragment: packet(.fragment, keyframe: true, size: 10))
        #expect(cache.gop.count == 1)
    }

    @Test func aClientThatAsksAndNeverReads_isCutOffAfterTheControlLimit() {
        var queue = ViewerQueue(limit: 1 << 20)
        for _ in 0..<ViewerQueue.controlLimit {
            let queued = queue.pushControl(.text("error: unknown command"))
            #expect(queued)
        }
        let refused = !queue.pushControl(.text("error: unknown command"))
        #expect(refused, "one more than the limit is refused")
        #expect(queue.items.count == ViewerQueue.controlLimit)
        _ = queue.pop()
        #expect(queue.controlItems == ViewerQueue.controlLimit - 1)
        let room = queue.pushControl(.text("ok"))
        #expect(room, "a reader that takes one makes room for one")
    }
}
