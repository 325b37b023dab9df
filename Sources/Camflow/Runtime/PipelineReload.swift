import Synchronization

extension Pipeline {
    /// Why a reload was not applied; the running graph is as it was.
    public struct ReloadRefused: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Changes the running graph to `newGraph` (checked against the same
    /// registry), node by node (``GraphDiff``):
    ///
    /// - kept nodes run on with their state, connections and edges: no packet
    ///   on an edge whose both ends stay is lost or reordered;
    /// - a replaced node's old instance drains what it holds, then the new
    ///   one starts (packets of the new queue wait, bounded as ever): its
    ///   consumers see the old instance's packets, then the new one's;
    /// - removed nodes drain and stop; added nodes start.
    ///
    /// Old sources (replaced or removed) are stopped; other old instances end
    /// when their inputs do, as at a graceful stop, and are not restarted if
    /// they fail. Returns what changed. Refused once the pipeline is stopping
    /// or has finished.
    ///
    /// A node the reload starts that fails to start (fails beyond its restart
    /// policy before any run of ``startupGrace``: a port in use) does not stop
    /// the pipeline: it is logged and sent to reload subscribers
    /// (``GraphDiff/failedToStart``), and a replaced node of the same type runs
    /// again with its previous settings. The next reload starts it again,
    /// changed or not.
    @discardableResult
    public func reload(to newGraph: PipelineGraph) throws(ReloadRefused) -> GraphDiff {
        try reloads.withLock { (applied: inout (count: Int, last: GraphDiff?, ended: Bool)) throws(ReloadRefused) -> GraphDiff in
            guard !stopSignal.isFired else { throw ReloadRefused(description: "the pipeline is stopping") }
            guard !applied.ended else { throw ReloadRefused(description: "the pipeline has finished") }
            let (oldGraph, oldRuntime) = current.withLock { ($0.graph, $0.runtime) }
            var diff = GraphDiff(from: oldGraph, to: newGraph)
            let retried = startFailures.withLock { failed in
                defer { failed.removeAll() }
                return failed
            }
            diff.retry(retried)
            guard !diff.isEmpty else { return diff }
            let number = applied.count + 1
            let old = Dictionary(uniqueKeysWithValues: oldRuntime.map { ($0.node.spec.id, $0) })
            let kept = Set(diff.kept)
            let runtime = newGraph.nodes.map { node -> RuntimeNode in
                if kept.contains(node.spec.id), var existing = old[node.spec.id] {
                    // The same instance; its graph node changes only in where things are written and its indices.
                    existing.node = node
                    return existing
                }
                let stats = NodeStats()
                let inbox = node.inputs.isEmpty ? nil : Inbox(lanes: node.inputs.count, capacity: node.spec.capacity, producers: 0)
                var made = RuntimeNode(node: node, inbox: inbox, stats: stats, input: PacketInput(inbox: inbox, stats: stats),
                                       output: PacketOutput(targets: [], stats: stats))
                made.after = old[node.spec.id]?.done
                made.reload = RuntimeNode.Reload(number: number, diff: diff)
                // A node whose last new settings failed to start runs its previous ones, if any: those stay its fallback.
                made.previous = retried.contains(node.spec.id) ? old[node.spec.id]?.previous : old[node.spec.id]?.node
                return made
            }
            var targets = [[PacketOutput.Target]](repeating: [], count: newGraph.nodes.count)
            for (index, node) in newGraph.nodes.enumerated() {
                guard let inbox = runtime[index].inbox else { continue }
                for (lane, producer) in node.inputs.enumerated() {
                    targets[producer].append(.init(inbox: inbox, lane: lane, accepts: node.type.accepts))
                }
            }
            // New instances first: every edge of the new graph is attached
            // before an old instance, or a kept node leaving an edge, can end it.
            let fresh = runtime.indices.filter { !kept.contains(runtime[$0].node.spec.id) }
            for index in fresh { runtime[index].output.rewire(to: targets[index]) }
            for index in runtime.indices where kept.contains(runtime[index].node.spec.id) {
                runtime[index].output.rewire(to: targets[index])
            }
            let leaving = (diff.replaced + diff.removed).compactMap { old[$0] }
            // Tracked for a hard stop until they finish (those already finished need no tracking).
            retired.withLock { $0 += leaving.filter { !$0.done.isFired } }
            current.withLock { $0 = (newGraph, runtime) }
            pendingStarts.withLock { $0 += 1 }
            startsSink.yield(fresh.map { runtime[$0] })
            // Old sources stop; any other old instance drains (and is no longer restarted).
            for instance in leaving { instance.stop.fire() }
            applied = (number, diff, false)
            for subscriber in reloadSubscribers.withLock({ $0.streams.values }) { subscriber.yield(diff) }
            logger.info("reload: \(diff)")
            return diff
        }
    }
}

extension Pipeline {
    /// A stream of reload changes, starting with the last one if any; it
    /// ends with the pipeline (or when its reader stops).
    func subscribeToReloads() -> AsyncStream<GraphDiff> {
        let (stream, continuation) = AsyncStream.makeStream(of: GraphDiff.self, bufferingPolicy: .bufferingNewest(16))
        reloads.withLock { applied in
            if let last = applied.last { continuation.yield(last) }
            guard !applied.ended else { return continuation.finish() }
            let id = reloadSubscribers.withLock { subscribers in
                defer { subscribers.next += 1 }
                subscribers.streams[subscribers.next] = continuation
                return subscribers.next
            }
            // A reader that stops (its node replaced) is forgotten.
            continuation.onTermination = { [weak self] _ in self?.reloadSubscribers.withLock { _ = $0.streams.removeValue(forKey: id) } }
        }
        return stream
    }
}
