import Synchronization

/// Counters of one node, updated by the node's task and read by status,
/// summary and metrics from anywhere. Relaxed atomics: each is exact on its
/// own, a snapshot of several is not a single instant.
public final class NodeStats: Sendable {
    let packetsIn = Atomic<UInt64>(0)
    let bytesIn = Atomic<UInt64>(0)
    let packetsOut = Atomic<UInt64>(0)
    let bytesOut = Atomic<UInt64>(0)
    let dropped = Atomic<UInt64>(0)
    let restarts = Atomic<UInt64>(0)
    let failures = Atomic<UInt64>(0)
    /// Packets a processor refused (``BadPacket``) and went on.
    let badPackets = Atomic<UInt64>(0)
    /// When the next bad packet is logged (NodeContext.report).
    let badPacketReports = Mutex(OccasionalReport())
    /// Whether the node's run is in progress (set by the pipeline).
    let running = Atomic<Bool>(false)
    /// 0 never reported, 1 connected, 2 not connected.
    let connection = Atomic<UInt8>(0)

    init() {}

    func countIn(_ batch: [Packet]) {
        var bytes = 0
        for packet in batch { bytes &+= packet.payload.readableBytes }
        packetsIn.add(UInt64(batch.count), ordering: .relaxed)
        bytesIn.add(UInt64(bytes), ordering: .relaxed)
    }

    @inline(__always)
    func countOut(_ packet: Packet) {
        packetsOut.add(1, ordering: .relaxed)
        bytesOut.add(UInt64(packet.payload.readableBytes), ordering: .relaxed)
    }

    /// Counts packets the node dropped on purpose (a queue policy) or lost.
    public func countDropped(_ count: Int = 1) {
        dropped.add(UInt64(count), ordering: .relaxed)
    }

    /// Reports whether a source that connects to something (a camera) has
    /// its connection now; `/readyz` and status pages read it.
    public func setConnected(_ connected: Bool) {
        connection.store(connected ? 1 : 2, ordering: .relaxed)
    }

    /// nil when the node never reported a connection state.
    var connected: Bool? {
        switch connection.load(ordering: .relaxed) {
        case 1: true
        case 2: false
        default: nil
        }
    }

    var snapshot: NodeSnapshot.Counters {
        NodeSnapshot.Counters(
            packetsIn: packetsIn.load(ordering: .relaxed),
            bytesIn: bytesIn.load(ordering: .relaxed),
            packetsOut: packetsOut.load(ordering: .relaxed),
            bytesOut: bytesOut.load(ordering: .relaxed),
            dropped: dropped.load(ordering: .relaxed),
            restarts: restarts.load(ordering: .relaxed),
            failures: failures.load(ordering: .relaxed),
            badPackets: badPackets.load(ordering: .relaxed)
        )
    }
}
