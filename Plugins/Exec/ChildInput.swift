import Camflow
import NIOCore
import Synchronization

/// The child's stdin: packets queued on its channel in order, flushed at
/// most once per turn of the event loop (one `writev` for every packet
/// queued meanwhile).
struct ChildInput: Sendable {
    let channel: any Channel
    /// Whether a flush is queued on the loop (only the loop reads or sets it).
    private let flushQueued: NIOLoopBoundBox<Bool>

    init(_ channel: any Channel) {
        self.channel = channel
        flushQueued = .makeBoxSendingValue(false, eventLoop: channel.eventLoop)
    }

    /// Queues one packet: its framing head, then its payload as it is (no
    /// copy). While the pipe keeps up the writer does not wait for it; once
    /// more than the channel's high-water mark waits to go out, it waits
    /// until all of that went: a child that reads slowly makes camflow wait
    /// (and so its producers), holding at most about that much. A write that
    /// fails closes the channel (the child went), which the next packet finds.
    func write(_ packet: Packet, ackSequence: UInt64) async throws {
        if !channel.isWritable { try await drain() }
        // Closed by a write that failed (the child went) or by a stop: nothing more goes.
        guard channel.isActive else { throw ExecNode.ChildFailed(description: "the child stopped reading (its stdin is closed)") }
        let head = ExecFraming.head(packet, ackSequence: ackSequence)
        let (channel, payload, flushQueued) = (channel, packet.payload, flushQueued)
        // One task on the loop for both, in order; no promise per packet.
        channel.eventLoop.execute {
            channel.write(head, promise: nil)
            channel.write(payload, promise: nil)
            // Writes queued on the loop before this flush runs go out with it.
            guard !flushQueued.value else { return }
            flushQueued.value = true
            channel.eventLoop.execute {
                flushQueued.value = false
                channel.flush()
            }
        }
    }

    /// Waits until everything queued went into the pipe (an empty write
    /// completes once every write before it did).
    func drain() async throws {
        do {
            try await channel.writeAndFlush(ByteBuffer())
        } catch {
            throw ExecNode.ChildFailed(description: "the child stopped reading (\(error))")
        }
    }
}

/// Packets written to the child and not yet acknowledged, oldest first.
final class InFlight: Sendable {
    private struct State {
        var next: UInt64 = 0
        var packets: [(UInt64, Packet)] = []
        var bytes = 0
        /// The child is gone: nothing will be acknowledged any more.
        var closed = false
        /// Fired at the next acknowledgement or close, for a writer waiting for room.
        var changed: OneShotSignal?
    }

    private let state = Mutex(State())

    func add(_ packet: Packet) -> UInt64 {
        state.withLock { state in
            defer { state.next += 1 }
            state.packets.append((state.next, packet))
            state.bytes += packet.payload.readableBytes
            return state.next
        }
    }

    var count: Int { state.withLock { $0.packets.count } }

    /// Whether one more packet may go out under the bounds (one always may when none is out).
    private static func hasRoom(_ state: State, packets: Int, bytes: Int) -> Bool {
        state.packets.isEmpty || (state.packets.count < packets && state.bytes < bytes)
    }

    /// Returns once one more packet may go out, or the child is gone (its
    /// write then fails). Warns once when the child has acknowledged nothing
    /// for 5 s.
    func waitForRoom(packets: Int, bytes: Int, _ context: NodeContext) async throws {
        let warnAt = context.clock.now.advanced(by: .seconds(5))
        var warned = false
        while true {
            let signal = state.withLock { state -> OneShotSignal? in
                guard !state.closed, !Self.hasRoom(state, packets: packets, bytes: bytes) else { return nil }
                if state.changed == nil { state.changed = OneShotSignal() }
                return state.changed
            }
            guard let signal else { return }
            if warned {
                await signal.wait()
            } else if await !Self.fires(signal, before: warnAt, on: context.clock) {
                warned = true
                context.logger.warning("the child has not acknowledged \(count) packets for 5s; waiting (max-unacked: \(packets))")
            }
            try Task.checkCancellation()
        }
    }

    /// Whether `signal` fires before `deadline` (false also when cancelled).
    private static func fires(_ signal: OneShotSignal, before deadline: ContinuousClock.Instant,
                              on clock: any PipelineClock) async -> Bool {
        await withTaskGroup(of: Bool.self) { race in
            race.addTask {
                await signal.wait()
                return signal.isFired
            }
            race.addTask {
                try? await clock.sleep(until: deadline)
                return false
            }
            let first = await race.next() ?? false
            race.cancelAll()
            return first
        }
    }

    /// The child is done with `sequence` and everything before it.
    func acknowledge(_ sequence: UInt64) {
        let changed = state.withLock { state -> OneShotSignal? in
            state.packets.removeAll { $0.0 <= sequence }
            state.bytes = state.packets.reduce(0) { $0 + $1.1.payload.readableBytes }
            defer { state.changed = nil }
            return state.changed
        }
        changed?.fire()
    }

    /// The child is gone: a writer waiting for room stops waiting.
    func close() {
        let changed = state.withLock { state -> OneShotSignal? in
            state.closed = true
            defer { state.changed = nil }
            return state.changed
        }
        changed?.fire()
    }

    var unacknowledged: [Packet] { state.withLock { $0.packets.map(\.1) } }
}
