/// Which edges a node's output feeds, as a value: the logic of
/// ``PacketOutput``'s rewiring by a reload, tested without tasks
/// (`OutputWiringTests`). Its methods say which edges to end; the output
/// ends them after its lock is released (ending an edge may wake its consumer).
struct OutputWiring {
    /// One edge: a consumer's inbox lane, and the kinds it takes.
    struct Target: Sendable {
        let inbox: Inbox
        let lane: Int
        let accepts: PacketKinds

        func isSameEdge(as other: Target) -> Bool { inbox === other.inbox && lane == other.lane }
    }

    private(set) var targets: [Target]
    /// Bumped by each rewire: the emitting task compares it with its copy.
    private(set) var version: UInt64 = 0
    /// Edges left by a rewire, to end once no push to them can be under way.
    private(set) var detached: [Target] = []
    /// Edges attached by a rewire that have not had the latest init segments yet.
    private var joined: [Target] = []
    private(set) var finished = false

    init(targets: [Target]) {
        self.targets = targets
    }

    /// The first wiring, before the node runs.
    mutating func connect(to targets: [Target]) {
        precondition(version == 0 && self.targets.isEmpty && !finished, "an output connected after it was wired")
        self.targets = targets
    }

    /// The edges of `targets` this output does not feed yet: the caller
    /// attaches them (one more producer per lane) before ``rewire(to:)``.
    func newcomers(in targets: [Target]) -> [Target] {
        targets.filter { target in !self.targets.contains(where: target.isSameEdge) }
    }

    /// What a rewire leaves to do.
    enum Rewired {
        /// In place; end `detached` edges once no push is under way.
        case applied
        /// The output had already finished: the edges just attached have
        /// nothing to wait for and end now.
        case alreadyFinished(endNow: [Target])
    }

    /// Feeds `targets` from now on; `attached` are the newcomers the caller attached.
    mutating func rewire(to targets: [Target], attached: [Target]) -> Rewired {
        guard !finished else { return .alreadyFinished(endNow: attached) }
        joined += attached
        let leaving = self.targets.filter { old in !targets.contains(where: old.isSameEdge) }
        joined.removeAll { joined in leaving.contains(where: joined.isSameEdge) }
        detached += leaving
        self.targets = targets
        version += 1
        return .applied
    }

    /// For the emitting task after a rewire: the targets now, their version,
    /// and the edges joined since (each gets the latest init segments once).
    mutating func takeChanges() -> (targets: [Target], version: UInt64, joined: [Target]) {
        defer { joined = [] }
        return (targets, version, joined)
    }

    /// The edges left, to end now (no push to them is under way).
    mutating func takeDetached() -> [Target] {
        defer { detached = [] }
        return detached
    }

    /// End of stream: every edge to end, once (nothing the second time).
    mutating func finish() -> [Target] {
        guard !finished else { return [] }
        finished = true
        defer { detached = [] }
        return targets + detached
    }
}
