public import Logging
public import ServiceLifecycle
import Synchronization

/// A running pipeline: every node in a task of its own, bounded edges between
/// them, restart policies, and a graceful stop.
///
/// ```
///   source ──edge──▶ transform ──edge──▶ sink
///     │  emit() suspends while          │  for await packet in input
///     │  the edge is full (backpressure)│  ends when all inputs end
///     ▼                                 ▼
///   stop: cancel sources ─▶ their outputs end ─▶ queues drain ─▶ sinks flush
/// ```
///
/// It is a `Service`: run it in a `ServiceGroup` and SIGINT/SIGTERM stop it
/// gracefully; cancelling its task stops it at once. A pipeline runs once.
public final class Pipeline: Service, Sendable {
    /// The graph that runs now: the one it started with, or the last reload's.
    public var graph: PipelineGraph { current.withLock { $0.graph } }
    /// The graph and its running nodes, in the graph's order; a reload replaces both.
    let current: Mutex<(graph: PipelineGraph, runtime: [RuntimeNode])>
    /// Nodes a reload made, for the run loop to start.
    let starts: AsyncStream<[RuntimeNode]>
    let startsSink: AsyncStream<[RuntimeNode]>.Continuation
    /// One reload at a time (and no stop while one is applied); those applied:
    /// how many, and the last one's changes; whether the run has ended.
    let reloads = Mutex<(count: Int, last: GraphDiff?, ended: Bool)>((0, nil, false))
    /// Subscribers to reload events (`pipeline-events` nodes).
    let reloadSubscribers = Mutex<(next: Int, streams: [Int: AsyncStream<GraphDiff>.Continuation])>((0, [:]))
    /// Old instances a reload replaced or removed that have not finished yet:
    /// a hard stop reaches them too.
    let retired = Mutex<[RuntimeNode]>([])
    /// Nodes whose start after a reload failed: the next reload starts them again.
    let startFailures = Mutex<Set<String>>([])
    /// Reloads whose nodes the run loop has not taken yet (counted under the reload lock).
    let pendingStarts = Mutex(0)
    let logger: Logger
    let stopSignal = OneShotSignal()
    private let failures = Mutex<[NodeFailure]>([])
    private let startedAt = Atomic<UInt64>(0)
    private let metricsInterval: Duration?
    private let metricsText: (@Sendable () -> String)?

    /// Prepares `graph` to run: creates the edges, starts nothing.
    /// - Parameters:
    ///   - metricsInterval: how often counters are exported through
    ///     swift-metrics; nil to not export.
    ///   - metricsText: the metrics backend's exposition (Prometheus text),
    ///     for nodes that serve it; the executable that bootstrapped the
    ///     backend passes it.
    public init(graph: PipelineGraph, logger: Logger, metricsInterval: Duration? = .seconds(1),
                metricsText: (@Sendable () -> String)? = nil) {
        self.logger = logger
        (starts, startsSink) = AsyncStream.makeStream(of: [RuntimeNode].self)
        self.metricsInterval = metricsInterval
        self.metricsText = metricsText
        var consumers = [[PacketOutput.Target]](repeating: [], count: graph.nodes.count)
        var inboxes: [Inbox?] = []
        for node in graph.nodes {
            guard !node.inputs.isEmpty else {
                inboxes.append(nil)
                continue
            }
            let inbox = Inbox(lanes: node.inputs.count, capacity: node.spec.capacity)
            inboxes.append(inbox)
            for (lane, producer) in node.inputs.enumerated() {
                consumers[producer].append(.init(inbox: inbox, lane: lane, accepts: node.type.accepts))
            }
        }
        let runtime = graph.nodes.indices.map { index in
            let stats = NodeStats()
            return RuntimeNode(
                node: graph.nodes[index], inbox: inboxes[index], stats: stats,
                input: PacketInput(inbox: inboxes[index], stats: stats),
                output: PacketOutput(targets: consumers[index], stats: stats))
        }
        current = Mutex((graph, runtime))
    }

    /// Runs until every node has finished: sources ran out or were stopped,
    /// and everything they produced has passed through.
    /// - Throws: ``PipelineFailure`` when a node failed beyond its restart policy.
    public func run() async throws {
        startedAt.store(MonotonicClock.now(), ordering: .relaxed)
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await runNodes()
            } onCancel: {
                terminate()
            }
        } onGracefulShutdown: {
            self.requestStop()
        }
        let failed = failures.withLock { $0 }
        if !failed.isEmpty { throw PipelineFailure(failures: failed) }
    }

    /// Stops the sources; the rest of the graph drains and the run returns.
    public func requestStop() {
        guard !stopSignal.isFired else { return }
        logger.debug("stopping sources")
        // Under the reload lock: a reload is applied whole before the stop, or refused after it.
        reloads.withLock { _ in stopSignal.fire() }
    }

    /// What nodes see of this pipeline.
    public var view: PipelineView {
        PipelineView(graph: { self.graph }, snapshot: { self.snapshot() }, metricsText: metricsText,
                     reloadEvents: { self.subscribeToReloads() })
    }

    /// Counters of every node and edge now.
    public func snapshot() -> PipelineSnapshot {
        let start = startedAt.load(ordering: .relaxed)
        let (graph, runtime) = current.withLock { ($0.graph, $0.runtime) }
        var edges: [EdgeSnapshot] = []
        for node in runtime {
            guard let inbox = node.inbox else { continue }
            for (lane, stats) in inbox.laneStats.enumerated() {
                edges.append(EdgeSnapshot(
                    from: graph.nodes[node.node.inputs[lane]].spec.id, to: node.node.spec.id,
                    capacity: inbox.capacity, depth: stats.depth, maxDepth: stats.maxDepth,
                    packets: stats.packetsIn, bytes: stats.bytesIn, discarded: stats.discarded,
                    blockedNanoseconds: stats.blockedNanoseconds))
            }
        }
        return PipelineSnapshot(
            name: graph.name,
            elapsedNanoseconds: start == 0 ? 0 : MonotonicClock.now() - start,
            nodes: runtime.map {
                NodeSnapshot(id: $0.node.spec.id, type: $0.node.type.name, counters: $0.stats.snapshot,
                             running: $0.stats.running.load(ordering: .relaxed), connected: $0.stats.connected)
            },
            edges: edges, reloads: reloads.withLock { $0.count }, lastReload: reloads.withLock { $0.last?.description })
    }

    private enum RunEvent { case nodeDone, stopRequested, started([RuntimeNode]), noMoreStarts }

    /// Every node in a task of one group; a reload adds tasks to it. Ends
    /// when every node, first and added, has finished.
    private func runNodes() async {
        let exporter = metricsInterval.map { MetricsExporter(interval: $0) }
        await withTaskGroup(of: Void.self) { outer in
            if let exporter {
                outer.addTask { await exporter.run { self.snapshot() } }
            }
            await withTaskGroup(of: RunEvent.self) { group in
                let first = current.withLock { $0.runtime }
                for node in first { group.addTask { await self.runNode(node); return .nodeDone } }
                var running = first.count
                group.addTask { await self.stopSignal.wait(); return .stopRequested }
                group.addTask { await self.nextStart() }
                while true {
                    // The run ends when every node has, unless a reload's nodes are on their way:
                    // a reload applied just as the last node ended must still run what it started.
                    if running == 0, reloads.withLock({ applied in
                        guard pendingStarts.withLock({ $0 }) == 0 else { return false }
                        applied.ended = true
                        return true
                    }) { break }
                    guard let event = await group.next() else { break }
                    switch event {
                    case .nodeDone:
                        running -= 1
                    case .stopRequested:
                        for node in current.withLock({ $0.runtime }) where node.node.type.isSource { node.stop.fire() }
                    case .started(let nodes):
                        pendingStarts.withLock { $0 -= 1 }
                        for node in nodes { group.addTask { await self.runNode(node); return .nodeDone } }
                        running += nodes.count
                        group.addTask { await self.nextStart() }
                    case .noMoreStarts:
                        break
                    }
                }
                reloads.withLock { $0.ended = true }
                for subscriber in reloadSubscribers.withLock({ $0.streams.values }) { subscriber.finish() }
                startsSink.finish()
                group.cancelAll()
            }
            outer.cancelAll()
        }
        exporter?.export(snapshot())
    }

    /// The next nodes a reload made. One task at a time waits here.
    private func nextStart() async -> RunEvent {
        var iterator = starts.makeAsyncIterator()
        return await iterator.next().map(RunEvent.started) ?? .noMoreStarts
    }

    /// A source runs until it ends or its stop fires (the pipeline stops, or
    /// a reload replaces or removes it); anything else until its input ends.
    private func runNode(_ node: RuntimeNode) async {
        defer {
            node.done.fire()
            retired.withLock { $0.removeAll { $0.done === node.done } }
        }
        // Never two instances of one node at once, even when a reload replaced
        // this one again before it started: the old one drains first.
        if let predecessor = node.after { await predecessor.wait() }
        guard node.node.type.isSource else { return await runToEnd(node) }
        guard !node.stop.isFired else {
            node.output.finish()
            return
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.runToEnd(node) }
            group.addTask { await node.stop.wait() }
            await group.next()
            group.cancelAll()
        }
    }

    /// How long a node a reload started must run before a failure counts
    /// as a failure of the running graph (which stops it) rather than a
    /// failure to start (which is reported, and the rest runs on). A bind
    /// to a port in use, a file that cannot be opened, fail well within it.
    public static let startupGrace = Duration.seconds(10)

    /// Runs a node under its restart policy, then ends its output and
    /// releases its input so nothing upstream waits on it.
    private func runToEnd(_ node: RuntimeNode) async {
        var outcome = await runUnderPolicy(node, configuration: node.node)
        // A node a reload started that cannot start never takes the running graph down with it.
        if case .failed(let error, let ranHealthy) = outcome, !ranHealthy, let reload = node.reload, !node.stop.isFired {
            // It goes into a log line and an event: escaped, bounded, and any URL's password masked.
            let message = UntrustedText.printable(Redaction.url(String(describing: error)), limit: 1_000)
            let failure = NodeFailure(node: node.node.spec.id, type: node.node.type.name, message: message)
            let fallback = node.previous.flatMap { $0.type.name == node.node.type.name ? $0 : nil }
            let outcomeText = fallback == nil ? "the rest of the graph runs on" : "it runs on with its previous settings"
            logger.error("reload: \(failure); \(outcomeText)")
            reportStartFailure(failure, of: reload)
            if let fallback {
                // The instance a reload replaced has ended (the new one waited for it); its settings
                // are started again in its place, on the same edges.
                outcome = await runUnderPolicy(node, configuration: fallback)
                // Its previous settings may not start again either (their port taken meanwhile): reported too.
                if case .failed(let error, let ranHealthy) = outcome, !ranHealthy, !node.stop.isFired {
                    logger.error("reload: node '\(failure.node)' failed again with its previous settings: \(error); the rest of the graph runs on")
                    outcome = .finished
                }
            } else {
                outcome = .finished
            }
        }
        node.output.finish()
        node.input.discardRemaining()
        // A retired instance (a reload replaced or removed it) that fails is logged; the pipeline runs on.
        if case .failed(let error, _) = outcome, !node.node.type.isSource && node.stop.isFired {
            logger.warning("node '\(node.node.spec.id)' failed while draining after a reload: \(error)")
        } else if case .failed(let error, _) = outcome {
            let failure = NodeFailure(node: node.node.spec.id, type: node.node.type.name,
                                      message: String(describing: error))
            logger.error("\(failure)")
            failures.withLock { $0.append(failure) }
            requestStop()
        }
    }

    /// The node's `configuration` run under its restart policy, on a thread
    /// of its own when it blocks.
    private func runUnderPolicy(_ node: RuntimeNode, configuration: PipelineGraph.Node) async -> Outcome {
        if configuration.type.performsBlockingIO {
            await BlockingIOThread.run(name: "camflow " + configuration.spec.id) {
                await self.runWithRestarts(node, configuration: configuration)
            }
        } else {
            await runWithRestarts(node, configuration: configuration)
        }
    }

    /// Tells the log's readers and `pipeline-events` that a node of a reload
    /// failed to start; the next reload tries it again even if unchanged.
    private func reportStartFailure(_ failure: NodeFailure, of reload: RuntimeNode.Reload) {
        var report = reload.diff
        report.failedToStart = [failure]
        reloads.withLock { applied in
            startFailures.withLock { _ = $0.insert(failure.node) }
            // The snapshot's last reload says it too, while it is the last one.
            if applied.count == reload.number { applied.last?.failedToStart.append(failure) }
            for subscriber in reloadSubscribers.withLock({ $0.streams.values }) { subscriber.yield(report) }
        }
    }

    private enum Outcome {
        case finished
        /// `ranHealthy`: some attempt ran for ``Pipeline/startupGrace`` or longer.
        case failed(any Error, ranHealthy: Bool)
    }

    private func runWithRestarts(_ runtimeNode: RuntimeNode, configuration: PipelineGraph.Node) async -> Outcome {
        let spec = configuration.spec
        let isSource = configuration.type.isSource
        var logger = self.logger
        logger[metadataKey: "node"] = .string(spec.id)
        let context = NodeContext(
            id: spec.id, typeName: spec.type, input: runtimeNode.input, output: runtimeNode.output,
            logger: logger, stats: runtimeNode.stats, pipeline: view)
        if configuration.type.reportsConnection { runtimeNode.stats.setConnected(false) }
        var attempt = 0
        var ranHealthy = false
        while true {
            let started = ContinuousClock.now
            do {
                let node = try configuration.type.make(configuration.options)
                runtimeNode.stats.running.store(true, ordering: .relaxed)
                defer { runtimeNode.stats.running.store(false, ordering: .relaxed) }
                try await node.run(context)
                return .finished
            } catch {
                // A source told to stop may surface the cancellation as an error.
                if isSource && Task.isCancelled { return .finished }
                runtimeNode.stats.failures.add(1, ordering: .relaxed)
                let policy = spec.restart
                let ran = ContinuousClock.now - started
                if ran >= Self.startupGrace { ranHealthy = true }
                // After a healthy run, a failure starts the count (and the backoff) over.
                if ran >= policy.resetAfter { attempt = 0 }
                attempt += 1
                // A retired instance is not restarted: its new instance takes over.
                guard policy.mode == .onFailure, attempt <= policy.maxRestarts ?? .max, !runtimeNode.stop.isFired else {
                    return .failed(error, ranHealthy: ranHealthy)
                }
                let delay = policy.delay(beforeAttempt: attempt)
                let limit = policy.maxRestarts.map { " of \($0)" } ?? ""
                logger.warning("node failed; restarting in \(delay.shortDescription) (restart \(attempt)\(limit))",
                               metadata: ["error": "\(error)"])
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    return .finished
                }
                runtimeNode.stats.restarts.add(1, ordering: .relaxed)
            }
        }
    }

    /// Hard stop: every edge ends now, queued packets are dropped.
    private func terminate() {
        let everyInstance = reloads.withLock { _ in
            stopSignal.fire()
            return current.withLock { $0.runtime } + retired.withLock { $0 }
        }
        for node in everyInstance {
            node.stop.fire()
            node.inbox?.terminate()
        }
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
}

/// One node that failed beyond its restart policy.
public struct NodeFailure: Sendable, Equatable, CustomStringConvertible {
    public let node: String
    public let type: String
    public let message: String
    public init(node: String, type: String, message: String) {
        self.node = node
        self.type = type
        self.message = message
    }
    public var description: String { "node '\(node)' (\(type)) failed: \(message)" }
}

/// The pipeline stopped because nodes failed.
public struct PipelineFailure: Error, Sendable, CustomStringConvertible {
    public let failures: [NodeFailure]
    public var description: String { failures.map(\.description).joined(separator: "\n") }
}
