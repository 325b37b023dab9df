import Camflow
import Metrics
import NIOCore
import Synchronization

/// The server's counters through swift-metrics (`/metrics` under `camflow
/// run`): per stream, clients playing, bytes and packets sent, GOPs and
/// packets dropped for slow clients; per playing client, the same and its
/// queue (``ClientSeries``, gone when it leaves); per server, connections
/// open and refused. Clients count into atomics; totals are exported once a
/// second.
final class RTSPMetrics: Sendable {
    struct Totals: Sendable {
        var bytes: UInt64 = 0
        var packets: UInt64 = 0
        var gops: UInt64 = 0
        var dropped: UInt64 = 0

        mutating func add(_ client: ClientOutput) {
            bytes &+= client.bytesSent.load(ordering: .relaxed)
            packets &+= client.packetsSent.load(ordering: .relaxed)
            gops &+= client.gopsDropped.load(ordering: .relaxed)
            dropped &+= client.packetsDropped.load(ordering: .relaxed)
        }
    }

    let node: String
    private let departed = Mutex<[String: Totals]>([:])
    private let deltas = CounterDeltas()
    /// The series of each playing client, by connection id.
    private let clients = Mutex<[Int: ClientSeries]>([:])

    init(node: String) {
        self.node = node
    }

    func refused(_ reason: String) {
        Counter(label: "camflow_rtsp_refused_total", dimensions: [("node", node), ("reason", reason)]).increment()
    }

    /// Counts the play and makes the client's own series (`peer`: its address as the socket gives it).
    func clientJoined(stream: String, _ client: ClientOutput, peer: SocketAddress?, wallNow: Double) {
        Counter(label: "camflow_rtsp_plays_total", dimensions: [("node", node), ("stream", stream)]).increment()
        let series = ClientSeries(node: node, stream: stream, client: ClientSeries.clientLabel(peer),
                                  transport: client.transportName, startedAt: wallNow)
        let replaced = clients.withLock { $0.updateValue(series, forKey: client.id) }
        replaced?.destroy()
    }

    /// A client's counts stay in the stream's totals after it leaves; its own series go.
    func clientLeft(stream: String, _ client: ClientOutput) {
        departed.withLock { $0[stream, default: Totals()].add(client) }
        clients.withLock { $0.removeValue(forKey: client.id) }?.destroy()
    }

    /// Totals per stream now (departed clients included), and the gauges.
    func export(_ streams: [(stream: String, clients: [ClientOutput], gopBytes: Int, fragments: UInt64)], connections: Int) {
        let gone = departed.withLock { $0 }
        let series = clients.withLock { $0 }
        for entry in streams {
            var totals = gone[entry.stream] ?? Totals()
            for client in entry.clients {
                totals.add(client)
                series[client.id]?.export(client)
            }
            let dimensions = [("node", node), ("stream", entry.stream)]
            Gauge(label: "camflow_rtsp_clients", dimensions: dimensions).record(entry.clients.count)
            Gauge(label: "camflow_rtsp_gop_cache_bytes", dimensions: dimensions).record(entry.gopBytes)
            deltas.add("camflow_rtsp_bytes_sent_total", dimensions, total: totals.bytes)
            deltas.add("camflow_rtsp_packets_sent_total", dimensions, total: totals.packets)
            deltas.add("camflow_rtsp_gops_dropped_total", dimensions, total: totals.gops)
            deltas.add("camflow_rtsp_packets_dropped_total", dimensions, total: totals.dropped)
        }
        Gauge(label: "camflow_rtsp_connections", dimensions: [("node", node)]).record(connections)
    }
}
