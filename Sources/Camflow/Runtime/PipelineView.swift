/// A running pipeline as its nodes may see it: the graph, every counter,
/// readiness, and the metrics backend's text. Read-only, so a node that
/// serves status pages cannot disturb the others.
public struct PipelineView: Sendable {
    /// The checked graph that runs.
    public let graph: PipelineGraph
    private let snapshotNow: @Sendable () -> PipelineSnapshot
    private let metricsTextNow: (@Sendable () -> String)?

    init(graph: PipelineGraph, snapshot: @escaping @Sendable () -> PipelineSnapshot,
         metricsText: (@Sendable () -> String)?) {
        self.graph = graph
        self.snapshotNow = snapshot
        self.metricsTextNow = metricsText
    }

    /// Counters of every node and edge now.
    public func snapshot() -> PipelineSnapshot { snapshotNow() }

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
