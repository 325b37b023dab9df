/// Everything a running ``Pipeline`` shares between its tasks, as one value
/// under one lock: the graph and its nodes, the reload in progress and
/// those applied, old instances still draining, failures, reload
/// subscribers, and whether the run is stopping or has ended.
///
/// Its methods change the state and return what must happen next (signals
/// to fire, streams to feed, nodes to start): the pipeline does that after
/// the lock is released, as async-http-client's connection pool does. No
/// method resumes, fires, yields or logs. Transitions that cannot happen
/// (a commit without a reload begun, more starts taken than made) trap.
/// Tested without tasks (`PipelineStateTests`).
struct PipelineState {
    enum Phase: Equatable {
        case running
        /// Sources were told to stop; the rest drains. No reload is applied.
        case stopping
        /// Every edge was ended at once (a cancelled run).
        case terminated
        /// Every node has finished; nothing more will run.
        case ended
    }

    /// What a reload will change, made under the lock and carried out after it.
    struct ReloadPlan {
        let number: Int
        let diff: GraphDiff
        let graph: PipelineGraph
        let runtime: [RuntimeNode]
        /// Outputs to rewire, in order: new instances first, so that every
        /// edge of the new graph is attached before an old instance, or a kept
        /// node leaving an edge, can end it.
        let rewires: [(output: PacketOutput, targets: [PacketOutput.Target])]
        /// Indices in `runtime` of the instances this reload makes.
        let fresh: [Int]
        /// Old instances replaced or removed.
        let leaving: [RuntimeNode]
    }

    /// What the pipeline does once a reload is in place.
    struct ReloadCommit {
        let diff: GraphDiff
        /// For the run loop to start.
        let started: [RuntimeNode]
        /// Stop signals to fire: old instances, and new sources when a stop
        /// came while the reload was being applied.
        let stops: [OneShotSignal]
        /// Inboxes to end at once: the new nodes', when the run was terminated meanwhile.
        let terminate: [Inbox]
        let subscribers: [AsyncStream<GraphDiff>.Continuation]
    }

    private(set) var graph: PipelineGraph
    private(set) var runtime: [RuntimeNode]
    private(set) var phase = Phase.running
    private(set) var reloadCount = 0
    private(set) var lastReload: GraphDiff?
    private(set) var failures: [NodeFailure] = []
    private var reloading: ReloadPlan?
    /// Reloads committed whose nodes the run loop has not taken yet.
    private var pendingStarts = 0
    /// Old instances a reload replaced or removed that have not finished: a hard stop reaches them too.
    private(set) var retired: [RuntimeNode] = []
    /// Nodes whose start after a reload failed: the next reload starts them again.
    private var startFailures: Set<String> = []
    private var subscribers: [Int: AsyncStream<GraphDiff>.Continuation] = [:]
    private var nextSubscriber = 0

    init(graph: PipelineGraph, runtime: [RuntimeNode]) {
        self.graph = graph
        self.runtime = runtime
    }

    // MARK: Stopping

    /// A graceful stop: true the first time (the caller fires the stop signal).
    mutating func requestStop() -> Bool {
        guard phase == .running else { return false }
        phase = .stopping
        return true
    }

    /// A hard stop: every instance, current and retired, to stop and end now.
    mutating func terminate() -> [RuntimeNode] {
        if phase != .ended { phase = .terminated }
        return runtime + retired
    }

    /// The stop signals of the current sources (the run loop fires them when a stop is requested).
    var sourceStops: [OneShotSignal] { runtime.filter(\.node.type.isSource).map(\.stop) }

    // MARK: Reloads

    enum ReloadStep {
        /// Nothing changes: the empty diff.
        case unchanged(GraphDiff)
        /// Rewire the plan's outputs, then ``commitReload()``.
        case apply(ReloadPlan)
    }

    /// Checks a reload and plans it; the caller rewires the outputs, then
    /// calls ``commitReload()``.
    mutating func beginReload(to newGraph: PipelineGraph) throws(Pipeline.ReloadRefused) -> ReloadStep {
        switch phase {
        case .stopping, .terminated: throw Pipeline.ReloadRefused(description: "the pipeline is stopping")
        case .ended: throw Pipeline.ReloadRefused(description: "the pipeline has finished")
        case .running: break
        }
        guard reloading == nil else { throw Pipeline.ReloadRefused(description: "another reload is being applied") }
        var diff = GraphDiff(from: graph, to: newGraph)
        diff.retry(startFailures)
        guard !diff.isEmpty else { return .unchanged(diff) }
        let retried = startFailures
        startFailures = []
        let number = reloadCount + 1
        let old = Dictionary(uniqueKeysWithValues: runtime.map { ($0.node.spec.id, $0) })
        let kept = Set(diff.kept)
        let newRuntime = newGraph.nodes.map { node -> RuntimeNode in
            if kept.contains(node.spec.id), var existing = old[node.spec.id] {
                // The same instance; its graph node changes only in where things are written and its indices.
                existing.node = node
                return existing
            }
            var made = RuntimeNode(node: node, producers: 0)
            made.after = old[node.spec.id]?.done
            made.reload = RuntimeNode.Reload(number: number, diff: diff)
            // A node whose last new settings failed to start runs its previous ones, if any: those stay its fallback.
            made.previous = retried.contains(node.spec.id) ? old[node.spec.id]?.previous : old[node.spec.id]?.node
            return made
        }
        let targets = PipelineState.targets(of: newGraph, runtime: newRuntime)
        let fresh = newRuntime.indices.filter { !kept.contains(newRuntime[$0].node.spec.id) }
        let keptIndices = newRuntime.indices.filter { kept.contains(newRuntime[$0].node.spec.id) }
        let plan = ReloadPlan(
            number: number, diff: diff, graph: newGraph, runtime: newRuntime,
            rewires: (fresh + keptIndices).map { (newRuntime[$0].output, targets[$0]) }, fresh: fresh,
            leaving: (diff.replaced + diff.removed).compactMap { old[$0] })
        reloading = plan
        return .apply(plan)
    }

    /// Puts the reload begun last in place, once its outputs are rewired.
    mutating func commitReload() -> ReloadCommit {
        guard let plan = reloading else { preconditionFailure("a reload committed that was not begun") }
        reloading = nil
        // Tracked for a hard stop until they finish (those already finished need no tracking).
        retired += plan.leaving.filter { !$0.done.isFired }
        graph = plan.graph
        runtime = plan.runtime
        pendingStarts += 1
        reloadCount = plan.number
        lastReload = plan.diff
        let started = plan.fresh.map { plan.runtime[$0] }
        // Old sources stop; any other old instance drains (and is no longer restarted).
        var stops = plan.leaving.map(\.stop)
        // A stop that came while the reload was applied reaches what it started.
        if phase != .running { stops += started.filter(\.node.type.isSource).map(\.stop) }
        let terminate = phase == .terminated ? started.compactMap(\.inbox) : []
        return ReloadCommit(diff: plan.diff, started: started, stops: stops, terminate: terminate,
                            subscribers: Array(subscribers.values))
    }

    /// The run loop took the nodes of one committed reload.
    mutating func takeStarted() {
        precondition(pendingStarts > 0, "more reload starts taken than committed")
        pendingStarts -= 1
    }

    /// A node a reload started failed to start: the next reload starts it
    /// again; the last reload's report says so if it is still the last.
    /// Returns the subscribers to tell.
    mutating func recordStartFailure(_ failure: NodeFailure, reload number: Int) -> [AsyncStream<GraphDiff>.Continuation] {
        startFailures.insert(failure.node)
        if reloadCount == number { lastReload?.failedToStart.append(failure) }
        return Array(subscribers.values)
    }

    // MARK: Running and ending

    mutating func recordFailure(_ failure: NodeFailure) {
        failures.append(failure)
    }

    /// An instance has finished: it needs no tracking for a hard stop.
    mutating func finished(_ done: OneShotSignal) {
        retired.removeAll { $0.done === done }
    }

    /// With no node running: ends the run unless a reload is being applied
    /// or its nodes are on their way (a reload applied just as the last node
    /// ended must still run what it started). Returns the subscribers to
    /// finish, or nil when the run goes on.
    mutating func endIfIdle() -> [AsyncStream<GraphDiff>.Continuation]? {
        guard pendingStarts == 0, reloading == nil else { return nil }
        return end()
    }

    /// Ends the run: no reload is accepted after. Returns the subscribers to finish.
    mutating func end() -> [AsyncStream<GraphDiff>.Continuation] {
        phase = .ended
        defer { subscribers = [:] }
        return Array(subscribers.values)
    }

    // MARK: Subscribers

    /// Adds a reload subscriber; nil when the run has ended (the caller
    /// finishes its stream). Also returns the last reload, which it gets first.
    mutating func subscribe(_ continuation: AsyncStream<GraphDiff>.Continuation) -> (id: Int?, last: GraphDiff?) {
        guard phase != .ended else { return (nil, lastReload) }
        defer { nextSubscriber += 1 }
        subscribers[nextSubscriber] = continuation
        return (nextSubscriber, lastReload)
    }

    mutating func unsubscribe(_ id: Int) {
        subscribers[id] = nil
    }

    // MARK: Wiring

    /// Each node's output targets: one edge per consumer lane.
    static func targets(of graph: PipelineGraph, runtime: [RuntimeNode]) -> [[PacketOutput.Target]] {
        var targets = [[PacketOutput.Target]](repeating: [], count: graph.nodes.count)
        for (index, node) in graph.nodes.enumerated() {
            guard let inbox = runtime[index].inbox else { continue }
            for (lane, producer) in node.inputs.enumerated() {
                targets[producer].append(.init(inbox: inbox, lane: lane, accepts: node.type.accepts))
            }
        }
        return targets
    }
}

/// A node's run-time parts.
struct RuntimeNode: Sendable {
    var node: PipelineGraph.Node
    let inbox: Inbox?
    let stats: NodeStats
    let input: PacketInput
    let output: PacketOutput
    /// Fired to stop a source: the pipeline stops, or a reload replaces or removes it.
    var stop = OneShotSignal()
    /// Fired when this instance has finished (output ended).
    var done = OneShotSignal()
    /// A replaced node's new instance starts when the old one has drained
    /// and ended: its packets keep their order, and a camera never has two connections.
    var after: OneShotSignal?
    /// The reload that made this instance, if one did: its failure to start is that reload's.
    var reload: Reload?
    /// For a replaced node, the settings it ran with before the reload:
    /// started again when the new ones fail to start.
    var previous: PipelineGraph.Node?

    /// Which reload made an instance, and what it changed.
    struct Reload: Sendable {
        var number: Int
        var diff: GraphDiff
    }

    /// A new instance of `node` with its own inbox and counters, its output
    /// not yet wired. `producers`: outputs already sending into each lane
    /// (a reload's new inboxes start with none and are attached).
    init(node: PipelineGraph.Node, producers: Int = 1, targets: [PacketOutput.Target] = []) {
        self.node = node
        let stats = NodeStats()
        let inbox = node.inputs.isEmpty ? nil : Inbox(lanes: node.inputs.count, capacity: node.spec.capacity, producers: producers)
        self.inbox = inbox
        self.stats = stats
        self.input = PacketInput(inbox: inbox, stats: stats, node: node.spec.id)
        self.output = PacketOutput(targets: targets, stats: stats, node: node.spec.id, isSource: node.type.isSource)
    }
}
