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
///
/// One task emits at a time: in debug builds, a second task emitting while
/// the first is still inside ``emit(_:)`` traps with the node's name
/// (``OwnerCheck``), instead of corrupting the batch silently.
public final class PacketOutput: @unchecked Sendable {
    // @unchecked: `pending`, `cached` and `cachedVersion` are touched only by
    // the one task that runs the node (emit, flush; checked in debug builds);
    // everything shared is in `wiring` or atomic.
    typealias Target = OutputWiring.Target

    private let stats: NodeStats
    private let owner: OwnerCheck
    /// Fires once every consumer of this output has gone for good (each
    /// edge's inbox discards): nobody reads what the node makes. The
    /// pipeline stops a source then, and has a transform stop taking input.
    let downstreamGone = OneShotSignal()
    /// For a source: once nobody reads, an emit waits until the pipeline
    /// cancels the source (a signal never fired, whose wait ends on
    /// cancellation), so that a source that ignores ``Flow`` reads no more.
    private let holdWhenGone: OneShotSignal?
    private let wiring: Mutex<OutputWiring>
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

    init(targets: [Target], stats: NodeStats, node: String = "", isSource: Bool = false) {
        self.stats = stats
        self.holdWhenGone = isSource ? OneShotSignal() : nil
        self.owner = OwnerCheck(node: node, what: "emitted to its output")
        self.cached = targets
        self.wiring = Mutex(OutputWiring(targets: targets))
    }

    /// The first wiring, before the node runs.
    func connect(to targets: [Target]) {
        wiring.withLock { $0.connect(to: targets) }
        cached = targets
    }

    /// Sends `packet` to every consumer that accepts its kind, suspending
    /// while a consumer's edge is full. Returns ``Flow/downstreamEnded``
    /// once every consumer has gone for good: a source should stop reading
    /// (the pipeline stops it anyway).
    @discardableResult
    public func emit(_ packet: Packet) async -> Flow {
        owner.enter()
        defer { owner.leave() }
        stats.countOut(packet)
        if collecting.load(ordering: .relaxed) {
            pending.append(packet)
            if pending.count >= PacketInput.batchLimit { return await flushPending() }
            return downstreamGone.isFired ? .downstreamEnded : .accepted
        }
        let targets = await beginPushing()
        var dropped = false
        for target in targets where target.accepts.contains(packet.kind) {
            if await !target.inbox.push(packet, lane: target.lane) { dropped = true }
        }
        endPushing()
        if packet.kind == .initSegment { remember(packet) }
        return dropped ? await hold(checkDownstream(targets)) : .accepted
    }

    /// Whether every consumer is gone, after a push found one gone; fires
    /// ``downstreamGone`` the first time it is so.
    private func checkDownstream(_ targets: [Target]) -> Flow {
        guard !targets.isEmpty, targets.allSatisfy({ $0.inbox.isDiscarding }) else { return .accepted }
        downstreamGone.fire()
        return .downstreamEnded
    }

    /// After a push found every consumer gone: a source waits here for the
    /// pipeline to cancel it.
    private func hold(_ flow: Flow) async -> Flow {
        if flow == .downstreamEnded, let holdWhenGone { await holdWhenGone.wait() }
        return flow
    }

    /// Returns when a consumer takes a packet this output sent (true), or at
    /// once (false) when none is waiting in any edge: for a producer that
    /// reuses its buffers and waits for downstream to let one go, on an event
    /// rather than a timer. From the emitting task, between emits.
    public func waitForConsumer() async -> Bool {
        owner.enter()
        defer { owner.leave() }
        let targets = await beginPushing()
        defer { endPushing() }
        for target in targets {
            if await target.inbox.waitForTake(lane: target.lane) { return true }
        }
        return false
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
        owner.enter()
        defer { owner.leave() }
        await flushPending()
    }

    @discardableResult
    private func flushPending() async -> Flow {
        guard !pending.isEmpty else { return .accepted }
        let packets = pending
        pending = []
        pending.reserveCapacity(PacketInput.batchLimit)
        var kinds = PacketKinds()
        for packet in packets { kinds.insert(PacketKinds(packet.kind)) }
        let targets = await beginPushing()
        var dropped = false
        for target in targets {
            if target.accepts.isSuperset(of: kinds) {
                if await !target.inbox.push(contentsOf: packets, lane: target.lane) { dropped = true }
            } else {
                let accepted = packets.filter { target.accepts.contains($0.kind) }
                if !accepted.isEmpty, await !target.inbox.push(contentsOf: accepted, lane: target.lane) { dropped = true }
            }
        }
        endPushing()
        if kinds.contains(.initSegment) { for packet in packets where packet.kind == .initSegment { remember(packet) } }
        return dropped ? checkDownstream(targets) : .accepted
    }

    /// Marks a push as under way and returns the targets to push to: the
    /// cached ones, or the new ones after a rewire (edges just attached get
    /// the latest init segments first).
    private func beginPushing() async -> [Target] {
        emitting.store(true, ordering: .sequentiallyConsistent)
        if version.load(ordering: .sequentiallyConsistent) != cachedVersion {
            let joined: [Target]
            (cached, cachedVersion, joined) = wiring.withLock { $0.takeChanges() }
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
    /// the output has finished. For a pipeline's reload, one at a time.
    func rewire(to targets: [Target]) {
        // Attached before the wiring changes, so no end of the output can
        // come between the two and leave a lane waiting for a producer.
        let newcomers = wiring.withLock { $0.newcomers(in: targets) }
        for target in newcomers { target.inbox.attach(lane: target.lane) }
        let rewired = wiring.withLock { wiring -> OutputWiring.Rewired in
            let rewired = wiring.rewire(to: targets, attached: newcomers)
            version.store(wiring.version, ordering: .sequentiallyConsistent)
            hasDetached.store(!wiring.detached.isEmpty, ordering: .sequentiallyConsistent)
            return rewired
        }
        switch rewired {
        case .alreadyFinished(let endNow):
            for target in endNow { target.inbox.finish(lane: target.lane) }
        case .applied:
            if !emitting.load(ordering: .sequentiallyConsistent) { finishDetached() }
        }
    }

    private func finishDetached() {
        let detached = wiring.withLock { wiring in
            hasDetached.store(false, ordering: .sequentiallyConsistent)
            return wiring.takeDetached()
        }
        for target in detached { target.inbox.finish(lane: target.lane) }
    }

    /// End of stream for every consumer. Idempotent.
    func finish() {
        for target in wiring.withLock({ $0.finish() }) { target.inbox.finish(lane: target.lane) }
    }
}
