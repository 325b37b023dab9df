import NIOCore
import Synchronization

/// Where a node's packets go: one edge per consumer (fan-out). Each edge
/// carries only the kinds its consumer accepts.
///
/// While a ``PacketProcessor`` works through a batch of its input, what it
/// emits is collected and sent as one run per consumer when the batch is
/// done (or 64 packets are waiting): one lock and at most one wake-up per run
/// instead of per packet. Order, backpressure and edge bounds are the same.
///
/// A reload may rewire an output while its node runs (``rewire(to:)``). The
/// emitting task keeps its own copy of the targets and takes the new ones at
/// its next emit; an edge it no longer feeds is finished once no push to it
/// can be in progress, so the consumer behind it sees every packet that was
/// sent to it and then its end. An edge attached by a reload first gets the
/// latest init segment of each stream this output has sent, so a consumer
/// added mid-stream (stats, a recorder) knows the tracks.
public final class PacketOutput: @unchecked Sendable {
    // @unchecked: `pending`, `cached` and `cachedVersion` are touched only by
    // the one task that runs the node (emit, flush); everything shared is in
    // `wiring` or atomic.
    struct Target: Sendable {
        let inbox: Inbox
        let lane: Int
        let accepts: PacketKinds

        func isSameEdge(as other: Target) -> Bool { inbox === other.inbox && lane == other.lane }
    }

    private struct Wiring {
        var targets: [Target]
        var version: UInt64 = 0
        /// Edges left by a rewire, to finish when no push to them can be under way.
        var detached: [Target] = []
        /// Edges attached by a rewire that have not had the latest init segments yet.
        var joined: [Target] = []
        var finished = false
    }

    private let stats: NodeStats
    private let wiring: Mutex<Wiring>
    private let version = Atomic<UInt64>(0)
    private let emitting = Atomic<Bool>(false)
    private let hasDetached = Atomic<Bool>(false)
    private let collecting = Atomic<Bool>(false)
    @exclusivity(unchecked) private var cached: [Target]
    @exclusivity(unchecked) private var cachedVersion: UInt64 = 0
    @exclusivity(unchecked) private var pending: [Packet] = []
    /// The latest init segment of each stream sent, for edges a reload attaches.
    @exclusivity(unchecked) private var latestInits: [String: Packet] = [:]
    @exclusivity(unchecked) private var rememberedOrder: [String] = []
    static let maxRememberedInits = 256

    init(targets: [Target], stats: NodeStats) {
        self.stats = stats
        self.cached = targets
        self.wiring = Mutex(Wiring(targets: targets))
    }

    /// Sends `packet` to every consumer that accepts its kind, suspending
    /// while a consumer's edge is full.
    public func emit(_ packet: Packet) async {
        stats.countOut(packet)
        if collecting.load(ordering: .relaxed) {
            pending.append(packet)
            if pending.count >= PacketInput.batchLimit { await flush() }
            return
        }
        let targets = await beginPushing()
        for target in targets where target.accepts.contains(packet.kind) {
            await target.inbox.push(packet, lane: target.lane)
        }
        endPushing()
        if packet.kind == .initSegment { remember(packet) }
    }

    /// From now on, collect what is emitted until ``flush()``; for the
    /// PacketProcessor loop only.
    func startCollecting() {
        collecting.store(true, ordering: .relaxed)
    }

    /// Sends what was collected and stops collecting.
    func stopCollecting() async {
        await flush()
        collecting.store(false, ordering: .relaxed)
    }

    /// Sends what was collected, in order, as one run per consumer.
    func flush() async {
        guard !pending.isEmpty else { return }
        let packets = pending
        pending = []
        pending.reserveCapacity(PacketInput.batchLimit)
        var kinds = PacketKinds()
        for packet in packets { kinds.insert(PacketKinds(packet.kind)) }
        let targets = await beginPushing()
        for target in targets {
            if target.accepts.isSuperset(of: kinds) {
                await target.inbox.push(contentsOf: packets, lane: target.lane)
            } else {
                let accepted = packets.filter { target.accepts.contains($0.kind) }
                if !accepted.isEmpty { await target.inbox.push(contentsOf: accepted, lane: target.lane) }
            }
        }
        endPushing()
        if kinds.contains(.initSegment) { for packet in packets where packet.kind == .initSegment { remember(packet) } }
    }

    /// Marks a push as under way and returns the targets to push to: the
    /// cached ones, or the new ones after a rewire (edges just attached get
    /// the latest init segments first).
    private func beginPushing() async -> [Target] {
        emitting.store(true, ordering: .sequentiallyConsistent)
        if version.load(ordering: .sequentiallyConsistent) != cachedVersion {
            let joined: [Target]
            (cached, cachedVersion, joined) = wiring.withLock { wiring in
                defer { wiring.joined = [] }
                return (wiring.targets, wiring.version, wiring.joined)
            }
            // The old edges are no longer pushed to by this task, the only pusher:
            // end them now, before a push to a new edge may block.
            finishDetached()
            let inits = rememberedOrder.compactMap { latestInits[$0] }
            for target in joined where target.accepts.contains(.initSegment) && !inits.isEmpty {
                await target.inbox.push(contentsOf: inits, lane: target.lane)
            }
        }
        return cached
    }

    /// Keeps a copy of the init segment (its own bytes: a slice would keep a
    /// parser's whole read buffer alive), the oldest stream going first past the limit.
    private func remember(_ initSegment: Packet) {
        var copy = initSegment
        var bytes = ByteBuffer()
        bytes.writeImmutableBuffer(initSegment.payload)
        copy.payload = bytes
        if latestInits.updateValue(copy, forKey: initSegment.stream) == nil {
            rememberedOrder.append(initSegment.stream)
            if rememberedOrder.count > Self.maxRememberedInits { latestInits[rememberedOrder.removeFirst()] = nil }
        }
    }

    private func endPushing() {
        emitting.store(false, ordering: .sequentiallyConsistent)
        if hasDetached.load(ordering: .sequentiallyConsistent) { finishDetached() }
    }

    /// Sends to `targets` from now on: new edges are attached at once, edges
    /// left are finished when no push to them is under way. Does nothing once
    /// the output has finished. For a pipeline's reload.
    func rewire(to targets: [Target]) {
        let applied = wiring.withLock { wiring -> Bool in
            guard !wiring.finished else {
                // This producer has ended: a new edge from it has nothing to wait for.
                for target in targets where !wiring.targets.contains(where: target.isSameEdge) { target.inbox.finish(lane: target.lane) }
                return false
            }
            for target in targets where !wiring.targets.contains(where: target.isSameEdge) {
                target.inbox.attach(lane: target.lane)
                wiring.joined.append(target)
            }
            let leaving = wiring.targets.filter { old in !targets.contains(where: old.isSameEdge) }
            wiring.joined.removeAll { joined in leaving.contains(where: joined.isSameEdge) }
            wiring.detached += leaving
            wiring.targets = targets
            wiring.version += 1
            version.store(wiring.version, ordering: .sequentiallyConsistent)
            hasDetached.store(!wiring.detached.isEmpty, ordering: .sequentiallyConsistent)
            return true
        }
        if applied, !emitting.load(ordering: .sequentiallyConsistent) { finishDetached() }
    }

    private func finishDetached() {
        let detached = wiring.withLock { wiring in
            defer { wiring.detached = [] }
            hasDetached.store(false, ordering: .sequentiallyConsistent)
            return wiring.detached
        }
        for target in detached { target.inbox.finish(lane: target.lane) }
    }

    /// End of stream for every consumer. Idempotent.
    func finish() {
        let ending = wiring.withLock { wiring -> [Target] in
            guard !wiring.finished else { return [] }
            wiring.finished = true
            defer { wiring.detached = [] }
            return wiring.targets + wiring.detached
        }
        for target in ending { target.inbox.finish(lane: target.lane) }
    }
}
