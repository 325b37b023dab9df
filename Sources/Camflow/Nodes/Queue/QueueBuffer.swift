internal import DequeModule

/// What a queue does when a packet arrives and it is full.
public enum WhenFull: String, Sendable, CaseIterable {
    /// Suspend the producer until there is room (backpressure).
    case block
    /// Drop the oldest queued packets to make room.
    case dropOldest = "drop-oldest"
    /// Drop the arriving packet.
    case dropNewest = "drop-newest"
    /// Drop the arriving packet and every following one until the next
    /// keyframe, so no undecodable delta frame is passed on.
    case dropGOP = "drop-gop"
}

/// The queue node's buffer and its full-policy: a value, tested without tasks.
///
/// Limits are by packets, bytes and media time (the span between the oldest
/// and newest queued decode timestamps). An empty queue always takes a packet,
/// however big, so one large packet cannot wedge a pipeline. After any drop
/// the next packet that passes is flagged `discontinuity`, so a parser
/// downstream knows to resynchronise.
struct QueueBuffer {
    struct Limits: Sendable, Equatable {
        var packets: Int?
        var bytes: Int?
        var duration: Duration?
    }

    enum Offer: Equatable {
        /// Queued; `dropped` older packets made room (drop-oldest).
        case accepted(dropped: Int)
        /// Full and the policy is `block`: offer again after a ``take()``.
        case full
        /// The packet was dropped by the policy.
        case dropped
    }

    let limits: Limits
    let policy: WhenFull
    private(set) var packets: Deque<Packet> = []
    private(set) var bytes = 0
    /// drop-gop: delta frames are dropped until a keyframe arrives.
    private(set) var awaitingKeyframe = false
    private var gapBeforeNext = false

    init(limits: Limits, policy: WhenFull) {
        self.limits = limits
        self.policy = policy
    }

    var count: Int { packets.count }
    var isEmpty: Bool { packets.isEmpty }

    mutating func offer(_ packet: Packet) -> Offer {
        if policy == .dropGOP, awaitingKeyframe, packet.media?.keyframe == false {
            gapBeforeNext = true
            return .dropped
        }
        if fits(packet) {
            if packet.isKeyframe { awaitingKeyframe = false }
            append(packet)
            return .accepted(dropped: 0)
        }
        switch policy {
        case .block:
            return .full
        case .dropNewest:
            gapBeforeNext = true
            return .dropped
        case .dropGOP:
            gapBeforeNext = true
            // Only frames that say whether they are keyframes start a GOP
            // wait; bytes, init and events are just dropped.
            if packet.media?.keyframe != nil { awaitingKeyframe = true }
            return .dropped
        case .dropOldest:
            var dropped = 0
            while !packets.isEmpty, !fits(packet) {
                _ = removeFirst()
                dropped += 1
            }
            if !packets.isEmpty { packets[0].discontinuity = true }
            else { gapBeforeNext = true }
            append(packet)
            return .accepted(dropped: dropped)
        }
    }

    mutating func take() -> Packet? {
        packets.isEmpty ? nil : removeFirst()
    }

    private func fits(_ packet: Packet) -> Bool {
        guard !packets.isEmpty else { return true }
        if let max = limits.packets, packets.count + 1 > max { return false }
        if let max = limits.bytes, bytes + packet.payload.readableBytes > max { return false }
        if let max = limits.duration, let newest = packet.media?.dtsNanoseconds,
           let oldest = packets.first(where: { $0.media?.dtsNanoseconds != nil })?.media?.dtsNanoseconds,
           newest.subtractingReportingOverflow(oldest).overflow || newest - oldest > max.nanoseconds {
            return false
        }
        return true
    }

    private mutating func append(_ packet: Packet) {
        var packet = packet
        if gapBeforeNext {
            packet.discontinuity = true
            gapBeforeNext = false
        }
        bytes += packet.payload.readableBytes
        packets.append(packet)
    }

    private mutating func removeFirst() -> Packet {
        let packet = packets.removeFirst()
        bytes -= packet.payload.readableBytes
        return packet
    }
}
