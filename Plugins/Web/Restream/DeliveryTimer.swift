import Camflow
import Metrics

/// `camflow_web_delivery_seconds{node,way}`: camflow's own share of a
/// viewer's latency, from a fragment's arrival at camflow (the camera
/// message that completed it, `Packet.receivedAt`) to its last bytes
/// handed to the viewer's socket, once per fragment and viewer. `way` is
/// `mse` (the camera protocol over WebSocket) or `webrtc` (a frame's last
/// SRTP packet flushed to the UDP socket).
///
/// The swift-metrics handler is made once per node and way: a lookup per
/// record would take the registry's lock and allocate the dimensions.
struct DeliveryTimer: Sendable {
    static let label = "camflow_web_delivery_seconds"

    private let timer: Timer

    init(node: String, way: String) {
        timer = Timer(label: Self.label, dimensions: [("node", node), ("way", way)])
    }

    /// Records the time from `receivedAt` (``MonotonicClock`` ns) to `now`
    /// for one viewer. 0 is a fragment without an arrival of its own (a
    /// joiner's cached GOP): not recorded.
    func record(since receivedAt: UInt64, now: UInt64 = MonotonicClock.now()) {
        guard receivedAt != 0 else { return }
        timer.recordNanoseconds(Int64(clamping: now >= receivedAt ? now - receivedAt : 0))
    }
}
