import Camflow
import CZeroMQ
import NIOCore
import Synchronization

/// `zmq-subscribe`: packets from ZeroMQ messages in camflow's format, so one
/// camflow process can feed another.
struct ZMQSubscribe: Node {
    static let type = NodeType(
        name: "zmq-subscribe",
        summary: "Receives camflow packets over ZeroMQ (topic, JSON header, payload) from zmq-publish or a broker.",
        details: """
            A SUB socket, connected (or bound) to the endpoints, subscribed to the topic prefixes. \
            Each three-frame message becomes the packet it was: kind, stream, sequence, media \
            fields, event fields and payload. Every header field is checked for its type and range \
            (stream, codec and event names 1 to 256 bytes without control characters, timescale and \
            track 32-bit, width and height 0 to 65535, duration 0 to 2^40, times whole 64-bit \
            numbers; a header of at most 64KiB). A malformed message (wrong frame count, bad header, \
            a frame over 'max-message-size', which libzmq refuses by closing the connection) \
            becomes a 'zmq-error' event or a dropped connection and is skipped (logged the first \
            time and every thousandth, counted as dropped). The socket lives on \
            a thread of its own; when the pipeline is slow, messages wait in libzmq up to 'rcvhwm' \
            and are then dropped by the publisher, never piled up in memory.
            """,
        options: [
            OptionSpec("endpoint", .list(.string), required: true, "ZeroMQ endpoints, such as tcp://127.0.0.1:5556."),
            OptionSpec("bind", .bool, default: "false", "Bind the endpoints instead of connecting to them."),
            OptionSpec("topics", .list(.string), "Topic prefixes to subscribe to, such as cam1/; everything when unset."),
            OptionSpec("rcvhwm", .integer, default: "1000", min: "0", "Messages queued before the publisher drops for this subscriber."),
            OptionSpec("max-message-size", .size, default: "64MiB", min: "1KiB",
                       "Largest message frame accepted (ZMQ_MAXMSGSIZE); a peer sending a larger one is disconnected."),
        ] + CurveSettings.optionSpecs(server: false) + LinkSettings.optionSpecs,
        accepts: [],
        emits: .kinds(.all),
        make: { options in
            let endpoints = try options.stringList("endpoint")
            guard !endpoints.isEmpty else { throw options.error("expected at least one endpoint", option: "endpoint") }
            let topics = try options.stringList("topics")
            return ZMQSubscribe(endpoints: endpoints, bind: try options.bool("bind"),
                                topics: topics.isEmpty ? [""] : topics,
                                highWaterMark: Int32(clamping: try options.integer("rcvhwm")),
                                maxMessageSize: try options.size("max-message-size"), curve: try CurveSettings.from(options),
                                link: try LinkSettings.from(options))
        })

    let endpoints: [String]
    let bind: Bool
    let topics: [String]
    let highWaterMark: Int32
    let maxMessageSize: Int
    let curve: CurveSettings?
    let link: LinkSettings

    func run(_ context: NodeContext) async throws {
        let handoff = Handoff()
        let wakeup = try ZMQWakeup()
        let (messages, continuation) = AsyncStream<[ByteBuffer]>.makeStream()
        // The socket lives on a thread of its own, asleep in zmq_poll until a message, room or the stop.
        async let receiving: Void = BlockingIOThread.run(name: "zmq-subscribe") {
            defer { continuation.finish() }
            try receive(handoff, wakeup, continuation)
        }
        var sequence: UInt64 = 0
        // Ends when the thread does, or at once when the node is stopped (cancelled).
        for await message in messages {
            if handoff.taken() { wakeup.wake() }
            guard message.count == 3 else {
                let got = message.count > 3 ? "more than 3" : "\(message.count)"
                await reject("expected 3 frames (topic, header, payload), got \(got)", context, &sequence)
                continue
            }
            do {
                await context.emit(try PacketHeader.packet(header: message[1], payload: message[2]))
            } catch {
                await reject("\(error) (topic '\(UntrustedText.printable(message[0], limit: 64))')", context, &sequence)
            }
        }
        handoff.stop()
        wakeup.wake()
        try await receiving
    }

    /// The thread: receives while there is room downstream, else leaves
    /// messages in the socket (its queue fills, and the publisher drops).
    private func receive(_ handoff: Handoff, _ wakeup: ZMQWakeup,
                         _ continuation: AsyncStream<[ByteBuffer]>.Continuation) throws(ZMQError) {
        let socket = try ZMQSocket(.sub)
        defer { socket.close() }
        try socket.set(ZMQ_RCVHWM, highWaterMark)
        try socket.set(ZMQ_LINGER, 0)
        try socket.set(ZMQ_MAXMSGSIZE, int64: Int64(maxMessageSize))
        try link.apply(to: socket)
        try curve?.configureClient(socket)
        for topic in topics { try socket.subscribe(topic) }
        for endpoint in endpoints {
            if bind { try socket.bind(endpoint) } else { try socket.connect(endpoint) }
        }
        var poll = ZMQPollSet([wakeup.receiver, socket])
        // A place downstream held for the next message.
        var reserved = false
        while true {
            if !reserved {
                switch handoff.reserve() {
                case .stopped: return
                case .reserved: reserved = true
                case .full: break
                }
            } else if handoff.isStopped {
                return
            }
            // A fourth part is kept only to tell the message apart from a good one.
            if reserved, let message = try socket.receive(maxParts: 4) {
                reserved = false
                continuation.yield(message)
                continue
            }
            poll.listen(1, reserved)
            try poll.wait()
            if poll.hasMessage(0) { wakeup.drain() }
        }
    }

    private func reject(_ reason: String, _ context: NodeContext, _ sequence: inout UInt64) async {
        // A peer flooding garbage must not flood the log: the first, then every thousandth
        // (each is still counted and sent on as an event).
        let count = sequence + 1
        if count == 1 || count % 1000 == 0 {
            context.logger.warning("skipping a malformed message (\(count) so far): \(reason)")
        }
        context.stats.countDropped()
        await context.emit(.event(Event("zmq-error", [("reason", .string(reason))]), stream: context.id, sequence: sequence))
        sequence += 1
    }
}

/// Flow control between the receiving thread and the node's task: at most
/// `capacity` messages in between. The thread, finding no room, says it
/// waits; the task, making room for a waiting thread, wakes it (through the
/// ``ZMQWakeup``, after the lock), so a steady flow costs no wake-ups.
private final class Handoff: Sendable {
    enum Reservation { case reserved, full, stopped }

    private struct State {
        var room = 16
        var threadWaits = false
        var stopped = false
    }

    private let state = Mutex(State())

    var isStopped: Bool { state.withLock { $0.stopped } }

    /// Takes a place for one message; `.full`: the thread is to be woken when one is free.
    func reserve() -> Reservation {
        state.withLock { state in
            if state.stopped { return .stopped }
            guard state.room > 0 else {
                state.threadWaits = true
                return .full
            }
            state.room -= 1
            return .reserved
        }
    }

    /// A message left the handoff; true when the thread waits for that room and must be woken.
    func taken() -> Bool {
        state.withLock { state in
            state.room += 1
            defer { state.threadWaits = false }
            return state.threadWaits
        }
    }

    /// The thread is to end; the caller wakes it.
    func stop() { state.withLock { $0.stopped = true } }
}
