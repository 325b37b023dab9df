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
            OptionSpec("max-packets", .integer, default: "1024", "Most packets held."),
            OptionSpec("max-bytes", .size, "Most payload bytes held; no limit when unset."),
            OptionSpec("max-duration", .duration,
                       "Most media time held (newest minus oldest decode time); no limit when unset."),
            OptionSpec("when-full", .choice(WhenFull.allCases.map(\.rawValue)), default: "block",
                       "What to do when a limit is reached."),
        ],
        accepts: .all,
        emits: .inputKinds,
        make: { options in
            let packets = try options.integer("max-packets")
            if let packets, packets < 1 {
                throw ConfigError("option 'max-packets' of node '\(options.nodeID)' must be at least 1",
                                  at: try options.value("max-packets")?.location ?? options.location)
            }
            return QueueNode(
                limits: .init(packets: packets, bytes: try options.size("max-bytes"),
                              duration: try options.duration("max-duration")),
                policy: try options.choice("when-full") ?? .block)
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

/// A ``QueueBuffer`` shared by the queue's intake and drain tasks.
private final class QueueStorage: Sendable {
    private struct State {
        var buffer: QueueBuffer
        var inputFinished = false
        var waitingTaker: UnsafeContinuation<Void, Never>?
        var waitingOfferer: UnsafeContinuation<Void, Never>?
    }

    private let state: Mutex<State>

    init(_ buffer: QueueBuffer) {
        state = Mutex(State(buffer: buffer))
    }

    /// Offers a packet, waiting while full under `block`. Returns how many
    /// packets the policy dropped.
    func offer(_ packet: Packet) async -> Int {
        while true {
            let (result, taker) = state.withLock { state in
                let result = state.buffer.offer(packet)
                var taker: UnsafeContinuation<Void, Never>?
                if case .accepted = result {
                    taker = state.waitingTaker
                    state.waitingTaker = nil
                }
                return (result, taker)
            }
            taker?.resume()
            switch result {
            case .accepted(let dropped): return dropped
            case .dropped: return 1
            case .full:
                await withUnsafeContinuation { (waiter: UnsafeContinuation<Void, Never>) in
                    let resumeNow = state.withLock { state -> Bool in
                        if state.buffer.isEmpty { return true }
                        state.waitingOfferer = waiter
                        return false
                    }
                    if resumeNow { waiter.resume() }
                }
            }
        }
    }

    func finishInput() {
        let taker = state.withLock { state in
            state.inputFinished = true
            defer { state.waitingTaker = nil }
            return state.waitingTaker
        }
        taker?.resume()
    }

    /// The oldest packet, waiting while empty; nil when input ended and the
    /// buffer is drained.
    func take() async -> Packet? {
        while true {
            enum Step { case packet(Packet), end, wait }
            let (step, offerer) = state.withLock { state -> (Step, UnsafeContinuation<Void, Never>?) in
                if let packet = state.buffer.take() {
                    defer { state.waitingOfferer = nil }
                    return (.packet(packet), state.waitingOfferer)
                }
                return (state.inputFinished ? .end : .wait, nil)
            }
            offerer?.resume()
            switch step {
            case .packet(let packet): return packet
            case .end: return nil
            case .wait:
                await withUnsafeContinuation { (waiter: UnsafeContinuation<Void, Never>) in
                    let resumeNow = state.withLock { state -> Bool in
                        if !state.buffer.isEmpty || state.inputFinished { return true }
                        state.waitingTaker = waiter
                        return false
                    }
                    if resumeNow { waiter.resume() }
                }
            }
        }
    }
}
