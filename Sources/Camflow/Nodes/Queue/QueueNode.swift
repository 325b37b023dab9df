import Synchronization

/// `queue`: an explicit, larger buffer between stages, with limits and a
/// policy for when it is full. Takes packets from its input as fast as they
/// come (subject to `block`) and hands them on as fast as its consumers take
/// them.
struct QueueNode: Node {
    static let type = NodeType(
        name: "queue",
        summary: "Buffers packets between stages, with limits and a policy when full.",
        details: """
            Takes packets as fast as its input sends them and passes them on as fast as its \
            consumers take them. When a limit is reached, 'when-full' decides: 'block' suspends \
            the producer (backpressure), 'drop-oldest' and 'drop-newest' drop one end, \
            'drop-gop' drops until the next keyframe so no undecodable delta frame is passed on. \
            The first packet after a drop is flagged as a discontinuity. Drops are counted.
            """,
        options: [
            OptionSpec("max-packets", .integer, default: "1024", min: "1", "Most packets held."),
            OptionSpec("max-bytes", .size, "Most payload bytes held; no limit when unset."),
            OptionSpec("max-duration", .duration,
                       "Most media time held (newest minus oldest decode time); no limit when unset."),
            OptionSpec("when-full", .choice(WhenFull.allCases.map(\.rawValue)), default: "block",
                       "What to do when a limit is reached."),
        ],
        accepts: .all,
        emits: .inputKinds,
        make: { options in
            QueueNode(
                limits: .init(packets: try options.integer("max-packets"), bytes: try options.ifSet("max-bytes", options.size),
                              duration: try options.ifSet("max-duration", options.duration)),
                policy: try options.choice("when-full"))
        })

    let limits: QueueBuffer.Limits
    let policy: WhenFull

    func run(_ context: NodeContext) async throws {
        let storage = QueueStorage(QueueBuffer(limits: limits, policy: policy))
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await packet in context.input {
                    let dropped = await storage.offer(packet)
                    if dropped > 0 { context.stats.countDropped(dropped) }
                }
                storage.finishInput()
            }
            group.addTask {
                while let packet = await storage.take() {
                    await context.emit(packet)
                }
            }
        }
    }
}

/// A ``QueueStateMachine`` shared by the queue's intake and drain tasks:
/// it holds the lock and resumes tasks, the state machine decides.
private final class QueueStorage: Sendable {
    typealias Waiter = UnsafeContinuation<Void, Never>
    private let state: Mutex<QueueStateMachine<Waiter>>

    init(_ buffer: QueueBuffer) {
        state = Mutex(QueueStateMachine(buffer))
    }

    /// Offers a packet, waiting while full under `block`. Returns how many
    /// packets the policy dropped.
    func offer(_ packet: Packet) async -> Int {
        while true {
            switch state.withLock({ $0.offer(packet) }) {
            case .accepted(let dropped, let taker):
                taker?.resume()
                return dropped
            case .dropped:
                return 1
            case .full:
                await withUnsafeContinuation { (waiter: Waiter) in
                    state.withLock { $0.waitForRoom(waiter) }?.resume()
                }
            }
        }
    }

    func finishInput() {
        state.withLock { $0.finishInput() }?.resume()
    }

    /// The oldest packet, waiting while empty; nil when input ended and the
    /// buffer is drained.
    func take() async -> Packet? {
        while true {
            switch state.withLock({ $0.take() }) {
            case .packet(let packet, let offerer):
                offerer?.resume()
                return packet
            case .end:
                return nil
            case .wait:
                await withUnsafeContinuation { (waiter: Waiter) in
                    state.withLock { $0.waitForPackets(waiter) }?.resume()
                }
            }
        }
    }
}
