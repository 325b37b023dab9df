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
        let step = try state.withLock { (state: inout PipelineState) throws(ReloadRefused) in
            try state.beginReload(to: newGraph)
        }
        let plan: PipelineState.ReloadPlan
        switch step {
        case .unchanged(let diff): return diff
        case .apply(let planned): plan = planned
        }
        // Outside the lock: each output's wiring has a lock of its own, and
        // an edge an output leaves may wake its consumer.
        for (output, targets) in plan.rewires { output.rewire(to: targets) }
        let commit = state.withLock { $0.commitReload() }
        startsSink.yield(commit.started)
        for stop in commit.stops { stop.fire() }
        for inbox in commit.terminate { inbox.terminate() }
        for subscriber in commit.subscribers { subscriber.yield(commit.diff) }
        logger.info("reload: \(commit.diff)")
        return commit.diff
    }
}

extension Pipeline {
    /// A stream of reload changes, starting with the last one if any; it
    /// ends with the pipeline (or when its reader stops).
    func subscribeToReloads() -> AsyncStream<GraphDiff> {
        let (stream, continuation) = AsyncStream.makeStream(of: GraphDiff.self, bufferingPolicy: .bufferingNewest(16))
        let (id, last) = state.withLock { $0.subscribe(continuation) }
        if let last { continuation.yield(last) }
        guard let id else {
            continuation.finish()
            return stream
        }
        // A reader that stops (its node replaced) is forgotten.
        continuation.onTermination = { [weak self] _ in self?.state.withLock { $0.unsubscribe(id) } }
        return stream
    }
}
