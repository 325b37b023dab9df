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
///
/// What its tasks share is one ``PipelineState`` under one lock; whatever a
/// change of it requires (firing a stop, starting nodes, telling reload
/// subscribers, logging) is done after the lock is released.
public final class Pipeline: Service, Sendable {
    /// The graph that runs now: the one it started with, or the last reload's.
    public var graph: PipelineGraph { state.withLock { $0.graph } }
    let state: Mutex<PipelineState>
    /// Nodes a reload made, for the run loop to start.
    let starts: AsyncStream<[RuntimeNode]>
    let startsSink: AsyncStream<[RuntimeNode]>.Continuation
    let logger: Logger
    /// Fired once when a stop is requested; the run loop stops the sources.
    let stopSignal = OneShotSignal()
    private let startedAt = Atomic<UInt64>(0)
    private let metricsInterval: Duration?
    private let metricsText: (@Sendable () -> String)?
    /// What every node reads time from; a test passes a manual one.
    let clock: any PipelineClock

    /// Prepares `graph` to run: creates the edges, starts nothing.
    /// - Parameters:
    ///   - metricsInterval: how often counters are exported through
    ///     swift-metrics; nil to not export.
    ///   - metricsText: the metrics backend's exposition (Prometheus text),
    ///     for nodes that serve it; the executable that bootstrapped the
    ///     backend passes it.
    ///   - clock: the time nodes read and wait on (backoff, timeouts,
    ///     intervals); a test passes one it moves by hand.
    public init(graph: PipelineGraph, logger: Logger, metricsInterval: Duration? = .seconds(1),
                metricsText: (@Sendable () -> String)? = nil, clock: any PipelineClock = SystemClock()) {
        self.logger = logger
        self.clock = clock
        (starts, startsSink) = AsyncStream.makeStream(of: [RuntimeNode].self)
        self.metricsInterval = metricsInterval
        self.metricsText = metricsText
        let runtime = graph.nodes.map { RuntimeNode(node: $0) }
        for (node, targets) in zip(runtime, PipelineState.targets(of: graph, runtime: runtime)) {
            node.output.connect(to: targets)
        }
        state = Mutex(PipelineState(graph: graph, runtime: runtime))
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
        let failed = state.withLock { $0.failures }
        if !failed.isEmpty { throw PipelineFailure(failures: failed) }
    }

    /// Stops the sources; the rest of the graph drains and the run returns.
    /// A reload being applied at the same time stops what it starts too.
    public func requestStop() {
        guard state.withLock({ $0.requestStop() }) else { return }
        logger.debug("stopping sources")
        stopSignal.fire()
    }

    /// Hard stop: every edge ends now, queued packets are dropped.
    private func terminate() {
        let everyInstance = state.withLock { $0.terminate() }
        stopSignal.fire()
        for node in everyInstance {
            node.stop.fire()
            node.inbox?.terminate()
        }
    }

    /// What nodes see of this pipeline.
    public var view: PipelineView {
        PipelineView(graph: { self.graph }, snapshot: { self.snapshot() }, metricsText: metricsText,
                     reloadEvents: { self.subscribeToReloads() })
    }

    /// Counters of every node and edge now.
    public func snapshot() -> PipelineSnapshot {
        let start = startedAt.load(ordering: .relaxed)
        let (graph, runtime, reloads, lastReload) = state.withLock { ($0.graph, $0.runtime, $0.reloadCount, $0.lastReload) }
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
            edges: edges, reloads: reloads, lastReload: lastReload?.description)
    }

    private enum RunEvent { case nodeDone, stopRequested, started([RuntimeNode]), noMoreStarts }

    /// Every node in a task of one group; a reload adds tasks to it. Ends
    /// when every node, first and added, has finished.
    private func runNodes() async {
        let exporter = metricsInterval.map { MetricsExporter(interval: $0) }
        await withTaskGroup(of: Void.self) { outer in
            if let exporter {
                outer.addTask { await exporter.run(clock: self.clock) { self.snapshot() } }
            }
            await withTaskGroup(of: RunEvent.self) { group in
                let first = state.withLock { $0.runtime }
                for node in first { group.addTask { await self.runNode(node); return .nodeDone } }
                var running = first.count
                group.addTask { await self.stopSignal.wait(); return .stopRequested }
                group.addTask { await self.nextStart() }
                var ended: [AsyncStream<GraphDiff>.Continuation]?
                while true {
                    if running == 0, let subscribers = state.withLock({ $0.endIfIdle() }) {
                        ended = subscribers
                        break
                    }
                    guard let event = await group.next() else { break }
                    switch event {
                    case .nodeDone:
                        running -= 1
                    case .stopRequested:
                        for stop in state.withLock({ $0.sourceStops }) { stop.fire() }
                    case .started(let nodes):
                        state.withLock { $0.takeStarted() }
                        for node in nodes { group.addTask { await self.runNode(node); return .nodeDone } }
                        running += nodes.count
                        group.addTask { await self.nextStart() }
                    case .noMoreStarts:
                        break
                    }
                }
                for subscriber in ended ?? state.withLock({ $0.end() }) { subscriber.finish() }
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

    /// A source runs until it ends, its stop fires (the pipeline stops, or
    /// a reload replaces or removes it) or nobody reads its output; anything
    /// else until its input ends.
    private func runNode(_ node: RuntimeNode) async {
        defer {
            node.done.fire()
            state.withLock { $0.finished(node.done) }
        }
        // Never two instances of one node at once, even when a reload replaced
        // this one again before it started: the old one drains first.
        if let predecessor = node.after { await predecessor.wait() }
        let isSource = node.node.type.isSource
        if isSource, node.stop.isFired {
            node.output.finish()
            return
        }
        await withTaskGroup(of: NodeEnding.self) { group in
            group.addTask { await self.runToEnd(node); return .ran }
            // A waiter cancelled when the node ran to its end returns without its signal.
            group.addTask {
                await node.output.downstreamGone.wait()
                return node.output.downstreamGone.isFired ? .downstreamGone : .cancelled
            }
            if isSource {
                group.addTask {
                    await node.stop.wait()
                    return node.stop.isFired ? .stopped : .cancelled
                }
            }
            while let ending = await group.next() {
                switch ending {
                case .ran:
                    group.cancelAll()
                    return
                case .cancelled:
                    break
                case .stopped:
                    group.cancelAll()
                case .downstreamGone where isSource:
                    logger.info("node '\(node.node.spec.id)' stops: every consumer of its output has gone")
                    group.cancelAll()
                case .downstreamGone:
                    // It stops taking input: its producers see their pushes dropped
                    // and learn the same, up to the sources, which stop.
                    logger.info("node '\(node.node.spec.id)' takes no more input: every consumer of its output has gone")
                    node.inbox?.discardAll()
                }
            }
        }
    }

    private enum NodeEnding { case ran, stopped, downstreamGone, cancelled }
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
