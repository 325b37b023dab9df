/// A running pipeline as its nodes may see it: the graph, every counter,
/// readiness, and the metrics backend's text. Read-only, so a node that
/// serves status pages cannot disturb the others.
public struct PipelineView: Sendable {
    /// The checked graph that runs now (a reload changes it).
    public var graph: PipelineGraph { graphNow() }
    private let graphNow: @Sendable () -> PipelineGraph
    private let snapshotNow: @Sendable () -> PipelineSnapshot
    private let metricsTextNow: (@Sendable () -> String)?
    private let reloadEventsNow: @Sendable () -> AsyncStream<GraphDiff>

    init(graph: @escaping @Sendable () -> PipelineGraph, snapshot: @escaping @Sendable () -> PipelineSnapshot,
         metricsText: (@Sendable () -> String)?, reloadEvents: @escaping @Sendable () -> AsyncStream<GraphDiff>) {
        self.graphNow = graph
        self.reloadEventsNow = reloadEvents
        self.snapshotNow = snapshot
        self.metricsTextNow = metricsText
    }

    /// Counters of every node and edge now.
    public func snapshot() -> PipelineSnapshot { snapshotNow() }

    /// What each reload from now on changed (the last one first, if there
    /// was one), until the pipeline ends. Each call is a subscription of its own.
    public func reloadEvents() -> AsyncStream<GraphDiff> { reloadEventsNow() }

    /// The metrics backend's exposition text (Prometheus), or nil when the
    /// program that runs the pipeline bootstrapped none.
    public func metricsText() -> String? { metricsTextNow?() }

    /// Sources that are not ready: not running, or (for those that report
    /// one) without their connection. Empty when the pipeline is ready.
    public func sourcesNotReady(in snapshot: PipelineSnapshot) -> [String] {
        graph.nodes.filter(\.type.isSource).compactMap { node in
            guard let state = snapshot.node(node.spec.id) else { return node.spec.id }
            let connected = node.type.reportsConnection ? state.connected == true : true
            return state.running && connected ? nil : node.spec.id
        }
    }
}
