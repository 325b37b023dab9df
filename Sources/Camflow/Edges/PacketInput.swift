import Synchronization

/// The packets arriving at a node from all its inputs, in arrival order.
/// Iterate it with `for await packet in context.input`; the loop ends when
/// every input has ended.
///
/// The input takes ready packets from the inbox in batches, so a busy edge
/// costs one lock and one wake-up per batch, not per packet. Packets of a
/// taken batch survive a restart of the node: the next instance gets them.
/// Read it from one task at a time: in debug builds, a second task reading
/// while the first is inside ``next()`` traps with the node's name.
public final class PacketInput: AsyncSequence, @unchecked Sendable {
    public typealias Element = Packet
    public typealias Failure = Never

    private let inbox: Inbox?
    private let stats: NodeStats
    private let owner: OwnerCheck
    // One task reads at a time (see above), so the run-time exclusivity
    // checks Swift would make on every packet are left out.
    @exclusivity(unchecked) private var batch: [Packet] = []
    @exclusivity(unchecked) private var index = 0
    /// The largest batch taken at once.
    static let batchLimit = 64

    init(inbox: Inbox?, stats: NodeStats, node: String = "") {
        self.inbox = inbox
        self.stats = stats
        self.owner = OwnerCheck(node: node, what: "read its input")
        batch.reserveCapacity(Self.batchLimit)
    }

    /// The next packet, or nil at end of stream.
    public func next() async -> Packet? {
        owner.enter()
        defer { owner.leave() }
        if index == batch.count {
            batch.removeAll(keepingCapacity: true)
            index = 0
            guard let inbox, await inbox.pop(into: &batch, limit: Self.batchLimit) else { return nil }
            // Counted per batch: two atomic adds per batch, not per packet.
            stats.countIn(batch)
        }
        let packet = batch[index]
        index += 1
        return packet
    }

    /// Whether packets of the batch taken last are still unread: the next
    /// `next()` returns at once, without the inbox.
    var hasBufferedPackets: Bool { index < batch.count }

    /// Puts a packet back at the front: the next `next()` (also the next
    /// instance's, after a restart) returns it. For a node that failed before
    /// it was done with a packet, so that nothing accepted is lost.
    public func putBack(_ packet: Packet) {
        if index > 0 {
            index -= 1
            batch[index] = packet
        } else {
            batch.insert(packet, at: 0)
        }
    }

    /// Drops everything queued and everything still to come: the node is gone.
    func discardRemaining() {
        if index < batch.count { stats.countDropped(batch.count - index) }
        batch.removeAll()
        index = 0
        inbox?.discardAll()
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let input: PacketInput
        public mutating func next() async -> Packet? { await input.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(input: self) }
}
