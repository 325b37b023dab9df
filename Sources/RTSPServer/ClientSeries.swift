import Metrics
import NIOCore
import Synchronization

/// One playing client's series in `/metrics`, labelled node, stream, client
/// (the peer's IP:port, never a user name) and transport: bytes, packets,
/// GOPs and packets dropped, queued bytes and the time it began to play.
/// Made at PLAY and destroyed when the client leaves (TEARDOWN, close,
/// session timeout, shutdown), so the series in `/metrics` never outnumber
/// the server's connections (`max-connections`).
///
/// The exporter adds what the client's atomics grew by through the handles
/// held here and never asks for a series by its labels again: an export that
/// races a departure increments a handle already destroyed, which no longer
/// reaches the registry, instead of registering the series anew.
final class ClientSeries: Sendable {
    private struct Seen {
        var bytes: UInt64 = 0
        var packets: UInt64 = 0
        var gops: UInt64 = 0
        var dropped: UInt64 = 0
    }

    static let labels = (
        bytes: "camflow_rtsp_client_bytes_sent_total",
        packets: "camflow_rtsp_client_packets_sent_total",
        gops: "camflow_rtsp_client_gops_dropped_total",
        dropped: "camflow_rtsp_client_packets_dropped_total",
        queued: "camflow_rtsp_client_queue_bytes",
        since: "camflow_rtsp_client_connected_since_seconds"
    )

    private let bytes: Counter
    private let packets: Counter
    private let gops: Counter
    private let dropped: Counter
    private let queued: Gauge
    private let since: Gauge
    private let seen = Mutex(Seen())

    init(node: String, stream: String, client: String, transport: String, startedAt wallSeconds: Double) {
        let dimensions = [("node", node), ("stream", stream), ("client", client), ("transport", transport)]
        bytes = Counter(label: Self.labels.bytes, dimensions: dimensions)
        packets = Counter(label: Self.labels.packets, dimensions: dimensions)
        gops = Counter(label: Self.labels.gops, dimensions: dimensions)
        dropped = Counter(label: Self.labels.dropped, dimensions: dimensions)
        queued = Gauge(label: Self.labels.queued, dimensions: dimensions)
        since = Gauge(label: Self.labels.since, dimensions: dimensions)
        since.record(wallSeconds.rounded(.down))
    }

    /// Adds what `client`'s counters grew by since the last export; the queue's bytes now.
    func export(_ client: ClientOutput) {
        let now = Seen(bytes: client.bytesSent.load(ordering: .relaxed), packets: client.packetsSent.load(ordering: .relaxed),
                       gops: client.gopsDropped.load(ordering: .relaxed), dropped: client.packetsDropped.load(ordering: .relaxed))
        let before = seen.withLock { seen in
            defer { seen = now }
            return seen
        }
        // The client's counters only grow: a smaller value is never seen, and &- keeps a surprise from trapping.
        if now.bytes != before.bytes { bytes.increment(by: Int64(clamping: now.bytes &- before.bytes)) }
        if now.packets != before.packets { packets.increment(by: Int64(clamping: now.packets &- before.packets)) }
        if now.gops != before.gops { gops.increment(by: Int64(clamping: now.gops &- before.gops)) }
        if now.dropped != before.dropped { dropped.increment(by: Int64(clamping: now.dropped &- before.dropped)) }
        queued.record(client.queuedBytes.load(ordering: .relaxed))
    }

    /// Removes every series of this client from the metrics backend.
    func destroy() {
        bytes.destroy()
        packets.destroy()
        gops.destroy()
        dropped.destroy()
        queued.destroy()
        since.destroy()
    }

    /// The peer as `IP:PORT` (`[IPV6]:PORT`): only the numbers the socket gives, so nothing a client sends
    /// can reach a label.
    static func clientLabel(_ address: SocketAddress?) -> String {
        guard let address, let ip = address.ipAddress, let port = address.port else { return "unknown" }
        return address.protocol == .inet6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}
