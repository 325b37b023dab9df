import Camflow
import Foundation

/// The body of `/api/stats`: the pipeline's graph with every node's and
/// edge's counters, readiness, and the web sink's streams and viewers.
/// Rates are left to the reader (two reports and their `uptimeSeconds`).
struct StatusReport: Codable, Sendable {
    struct Node: Codable, Sendable {
        let id: String
        let type: String
        let role: String
        let inputs: [String]
        let running: Bool
        let connected: Bool?
        let packetsIn: UInt64
        let packetsOut: UInt64
        let bytesIn: UInt64
        let bytesOut: UInt64
        let dropped: UInt64
        let restarts: UInt64
        let failures: UInt64
    }

    struct Edge: Codable, Sendable {
        let from: String
        let to: String
        let capacity: Int
        let depth: Int
        let maxDepth: Int
        let packets: UInt64
        let bytes: UInt64
        let discarded: UInt64
        let blockedSeconds: Double
    }

    let pipeline: String
    let uptimeSeconds: Double
    let ready: Bool
    let notReady: [String]
    let nodes: [Node]
    let edges: [Edge]
    /// The id of the web node that serves this report.
    let webNode: String
    let streams: [RestreamSnapshot.Stream]
    let viewers: [RestreamSnapshot.Viewer]
    /// Reloads of the pipeline file applied, and what the last one changed.
    let reloads: Int
    let lastReload: String?
    /// LL-HLS requests blocked now, waiting for a part (nil without HLS).
    let hlsWaiting: Int?

    init(pipeline view: PipelineView, webNode: String, restream: RestreamSnapshot, hlsWaiting: Int? = nil) {
        let snapshot = view.snapshot()
        let notReady = view.sourcesNotReady(in: snapshot)
        pipeline = snapshot.name
        uptimeSeconds = Double(snapshot.elapsedNanoseconds) / 1e9
        ready = notReady.isEmpty
        self.notReady = notReady
        let graph = view.graph
        nodes = snapshot.nodes.map { node in
            let spec = graph.node(node.id)
            let c = node.counters
            return Node(id: node.id, type: node.type, role: spec?.type.role ?? "node",
                        inputs: spec?.inputs.map { graph.nodes[$0].spec.id } ?? [],
                        running: node.running, connected: node.connected,
                        packetsIn: c.packetsIn, packetsOut: c.packetsOut, bytesIn: c.bytesIn, bytesOut: c.bytesOut,
                        dropped: c.dropped, restarts: c.restarts, failures: c.failures)
        }
        edges = snapshot.edges.map { edge in
            Edge(from: edge.from, to: edge.to, capacity: edge.capacity, depth: edge.depth, maxDepth: edge.maxDepth,
                 packets: edge.packets, bytes: edge.bytes, discarded: edge.discarded,
                 blockedSeconds: Double(edge.blockedNanoseconds) / 1e9)
        }
        self.webNode = webNode
        streams = restream.streams
        viewers = restream.viewers
        reloads = snapshot.reloads
        lastReload = snapshot.lastReload
        self.hlsWaiting = hlsWaiting
    }

    func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(self)
    }
}
