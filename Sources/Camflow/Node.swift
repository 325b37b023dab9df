public import Logging

/// A running node: one instance per run (and per restart), made by its
/// type's factory. The scheduler calls ``run(_:)`` in a task of its own.
///
/// - Sources produce until the task is cancelled (the pipeline is stopping)
///   or their input is exhausted, then return.
/// - Transforms and sinks read ``NodeContext/input`` until it ends. Most
///   write only ``PacketProcessor/process(_:_:)`` and get the loop for free.
///
/// Returning ends the node's output streams; throwing is a failure handled by
/// the node's restart policy.
public protocol Node: Sendable {
    func run(_ context: NodeContext) async throws
    /// The kinds this instance emits when its options narrow or widen the
    /// type's declaration (e.g. `frames: true`). nil: as declared.
    var emittedKinds: PacketKinds? { get }
}

extension Node {
    public var emittedKinds: PacketKinds? { nil }
}

/// A transform or sink written as a function of one packet: the run loop,
/// end of stream and restart hand-over are done for it.
public protocol PacketProcessor: Node {
    /// Called once before the first packet: open files, recover what a crash
    /// left. Throwing fails the node before it reads anything.
    mutating func setUp(_ context: NodeContext) async throws
    /// Handles one packet; emit results with `context.emit`. Throw
    /// ``BadPacket`` for a packet that cannot be handled but leaves the node
    /// sound (garbage from a peer): it is counted, logged and sent on as a
    /// `bad-packet` event, and the next packet comes. Any other error fails
    /// the node (its restart policy decides what follows).
    mutating func process(_ packet: Packet, _ context: NodeContext) async throws
    /// Called once at end of stream: flush what is pending.
    mutating func finish(_ context: NodeContext) async throws
}

extension PacketProcessor {
    public mutating func setUp(_ context: NodeContext) async throws {}
    public mutating func finish(_ context: NodeContext) async throws {}

    public func run(_ context: NodeContext) async throws {
        var processor = self
        try await processor.setUp(context)
        // What the node emits while it works through a batch of its input
        // goes out as one run per consumer when the batch is done.
        context.output.startCollecting()
        do {
            for await packet in context.input {
                do {
                    try await processor.process(packet, context)
                } catch let bad as BadPacket {
                    await context.report(bad, in: packet)
                }
                if !context.input.hasBufferedPackets { await context.output.flush() }
            }
            try await processor.finish(context)
        } catch {
            // What was emitted before the failure is not lost.
            await context.output.stopCollecting()
            throw error
        }
        await context.output.stopCollecting()
    }
}

/// A packet a ``PacketProcessor`` cannot handle, while the node itself is
/// sound: thrown from `process`, it costs that packet only.
public struct BadPacket: Error, Sendable, CustomStringConvertible {
    /// Why, for the log line and the event: short, no payload bytes.
    public let reason: String

    public init(_ reason: String) {
        self.reason = reason
    }

    public var description: String { "bad packet: \(reason)" }
}

/// What a running node sees of the pipeline: its id, its input and output,
/// a logger and its counters.
public struct NodeContext: Sendable {
    /// The node's id in the pipeline.
    public let id: String
    /// The node's type name.
    public let typeName: String
    /// Packets from all inputs, in arrival order. Empty for sources.
    public let input: PacketInput
    /// Fan-out to every consumer.
    public let output: PacketOutput
    /// Logger with `node` metadata set.
    public let logger: Logger
    /// The node's counters; nodes add drops here.
    public let stats: NodeStats
    /// The whole running pipeline, read-only: its graph, every counter,
    /// readiness and metrics. Status and web nodes read it; others need not.
    public let pipeline: PipelineView
    /// The pipeline's clock: read time and wait through it (backoff,
    /// timeouts, intervals), so tests can move it by hand.
    public let clock: any PipelineClock

    /// Counts a packet refused as bad, logs it (the first, then at most one
    /// line per 10 s with the count) and sends a `bad-packet`
    /// event on its stream (reason, packet kind and sequence).
    public func report(_ bad: BadPacket, in packet: Packet) async {
        stats.badPackets.add(1, ordering: .relaxed)
        let reason = UntrustedText.printable(bad.reason, limit: 200)
        // A peer sending garbage must not flood the log.
        let now = clock.now
        if let told = stats.badPacketReports.withLock({ $0.count(now: now) }) {
            logger.warning("bad packet skipped (\(told.total) so far, \(told.sinceLastTold) since the last line)", metadata: [
                "reason": "\(reason)", "stream": "\(UntrustedText.printable(packet.stream, limit: 100))",
                "sequence": "\(packet.sequence)"])
        }
        await emit(.event(Event("bad-packet", [("node", .string(id)), ("reason", .string(reason)),
                                               ("kind", .string(packet.kind.description)),
                                               ("sequence", .int(Int64(truncatingIfNeeded: packet.sequence)))]),
                          stream: packet.stream, sequence: packet.sequence))
    }

    /// Sends a packet downstream, suspending while a consumer's edge is
    /// full; ``Flow/downstreamEnded`` once nobody reads this node's output.
    @inlinable @discardableResult
    public func emit(_ packet: Packet) async -> Flow {
        await output.emit(packet)
    }
}
