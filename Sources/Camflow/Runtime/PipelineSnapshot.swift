import Metrics
import Synchronization

/// Counters of one node at one moment.
public struct NodeSnapshot: Sendable {
    public struct Counters: Sendable, Equatable {
        public var packetsIn: UInt64
        public var bytesIn: UInt64
        public var packetsOut: UInt64
        public var bytesOut: UInt64
        /// Packets dropped by a policy (queue) or lost to a failed node.
        public var dropped: UInt64
        public var restarts: UInt64
        public var failures: UInt64
        /// Packets a processor refused as bad and went on (``BadPacket``).
        public var badPackets: UInt64 = 0
    }

    public let id: String
    public let type: String
    public let counters: Counters
    /// Whether the node's run is in progress (between starts and restarts it is not).
    public let running: Bool
    /// For a node that reports a connection (a camera source): whether it
    /// has one now. nil for nodes that report none.
    public let connected: Bool?
}

/// Counters of one edge at one moment.
public struct EdgeSnapshot: Sendable {
    public let from: String
    public let to: String
    public let capacity: Int
    /// Packets queued now.
    public let depth: Int
    /// The most packets it ever held; never above `capacity`.
    public let maxDepth: Int
    public let packets: UInt64
    public let bytes: UInt64
    /// Packets dropped because their consumer had stopped.
    public let discarded: UInt64
    /// Time the producer spent suspended on this edge (backpressure).
    public let blockedNanoseconds: UInt64
}

/// Every counter of a pipeline at one moment.
public struct PipelineSnapshot: Sendable {
    public let name: String
    public let elapsedNanoseconds: UInt64
    public let nodes: [NodeSnapshot]
    public let edges: [EdgeSnapshot]
    /// Reloads applied since the start.
    public var reloads = 0
    /// What the last reload changed ("kept 5, replaced 1 (log), …"); nil before the first.
    public var lastReload: String?

    /// The node with `id`.
    public func node(_ id: String) -> NodeSnapshot? { nodes.first { $0.id == id } }

    /// A fixed-width table: one row per node, then one per edge.
    public func table(previous: PipelineSnapshot? = nil) -> String {
        let seconds = previous.map { Double(elapsedNanoseconds - $0.elapsedNanoseconds) / 1e9 }
            ?? Double(elapsedNanoseconds) / 1e9
        var rows = [["node", "type", "in", "out", "bytes in", "bytes out", "pkt/s", "dropped", "restarts"]]
        for node in nodes {
            let before = previous?.node(node.id)?.counters
            let moved = max(node.counters.packetsIn, node.counters.packetsOut)
                - max(before?.packetsIn ?? 0, before?.packetsOut ?? 0)
            rows.append([
                node.id, node.type, "\(node.counters.packetsIn)", "\(node.counters.packetsOut)",
                HumanUnits.bytes(node.counters.bytesIn), HumanUnits.bytes(node.counters.bytesOut),
                seconds > 0 ? HumanUnits.count(Double(moved) / seconds) : "-",
                "\(node.counters.dropped)", "\(node.counters.restarts)",
            ])
        }
        var edgeRows = [["edge", "depth", "max", "capacity", "packets", "blocked"]]
        for edge in edges {
            edgeRows.append([
                "\(edge.from) -> \(edge.to)", "\(edge.depth)", "\(edge.maxDepth)", "\(edge.capacity)",
                "\(edge.packets)", HumanUnits.duration(nanoseconds: edge.blockedNanoseconds),
            ])
        }
        let title = "\(name): \(HumanUnits.duration(nanoseconds: elapsedNanoseconds))"
        return ([title, TextTable.render(rows)] + (edges.isEmpty ? [] : [TextTable.render(edgeRows)]))
            .joined(separator: "\n")
    }
}

/// Plain-text tables for terminals: first row is the header, the first
/// column left-aligned and numbers right-aligned.
public enum TextTable {
    public static func render(_ rows: [[String]]) -> String {
        guard let header = rows.first else { return "" }
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        return rows.map { row in
            row.enumerated().map { i, cell in cell.padded(to: widths[i], right: i > 0) }
                .joined(separator: "  ")
                .trimmingTrailingSpaces
        }.joined(separator: "\n")
    }
}

extension String {
    var trimmingTrailingSpaces: String {
        var s = Substring(self)
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}

/// Publishes pipeline counters through swift-metrics, which the executable
/// bootstraps (Prometheus); without a backend it costs next to nothing.
/// Counters are pushed as deltas of snapshots, so the packet hot path stays
/// a couple of relaxed atomic adds.
final class MetricsExporter: Sendable {
    private let interval: Duration
    private let deltas = CounterDeltas()

    init(interval: Duration) {
        self.interval = interval
    }

    func run(clock: any PipelineClock, _ snapshot: @Sendable () -> PipelineSnapshot) async {
        while !Task.isCancelled {
            do { try await clock.sleep(for: interval) } catch { return }
            export(snapshot())
        }
    }

    func export(_ snapshot: PipelineSnapshot) {
        for node in snapshot.nodes {
            let dimensions = [("pipeline", snapshot.name), ("node", node.id), ("type", node.type)]
            add("camflow_node_packets_in_total", dimensions, node.counters.packetsIn)
            add("camflow_node_packets_out_total", dimensions, node.counters.packetsOut)
            add("camflow_node_bytes_in_total", dimensions, node.counters.bytesIn)
            add("camflow_node_bytes_out_total", dimensions, node.counters.bytesOut)
            add("camflow_node_dropped_total", dimensions, node.counters.dropped)
            add("camflow_node_restarts_total", dimensions, node.counters.restarts)
            add("camflow_node_bad_packets_total", dimensions, node.counters.badPackets)
        }
        for edge in snapshot.edges {
            let dimensions = [("pipeline", snapshot.name), ("from", edge.from), ("to", edge.to)]
            add("camflow_edge_packets_total", dimensions, edge.packets)
            add("camflow_edge_bytes_total", dimensions, edge.bytes)
            add("camflow_edge_discarded_total", dimensions, edge.discarded)
            add("camflow_edge_blocked_nanoseconds_total", dimensions, edge.blockedNanoseconds)
            Gauge(label: "camflow_edge_depth", dimensions: dimensions).record(edge.depth)
            Gauge(label: "camflow_edge_capacity", dimensions: dimensions).record(edge.capacity)
        }
    }

    private func add(_ label: String, _ dimensions: [(String, String)], _ total: UInt64) {
        deltas.add(label, dimensions, total: total)
    }
}

/// Turns running totals (atomic counters read now and then) into
/// swift-metrics counter increments, so hot paths only add to an atomic.
public final class CounterDeltas: Sendable {
    private let last = Mutex<[String: UInt64]>([:])

    public init() {}

    /// Increments counter `label` by what `total` grew since the last call.
    /// A total below the last one started over (a reload's new instance of
    /// the node): all of it is new.
    public func add(_ label: String, _ dimensions: [(String, String)], total: UInt64) {
        let key = label + dimensions.map { "|\($0.1)" }.joined()
        let delta = last.withLock { seen -> UInt64 in
            let previous = seen[key] ?? 0
            seen[key] = total
            return total >= previous ? total - previous : total
        }
        if delta > 0 { Counter(label: label, dimensions: dimensions).increment(by: Int64(clamping: delta)) }
    }
}
