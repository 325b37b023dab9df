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
            time, then at most a line per 10 s with the count, counted as dropped). The socket lives on \
            a thread of its own that takes every message as it arrives; when the pipeline is slow, \
            up to 'rcvhwm' messages wait for it and further ones are dropped here, counted and \
            logged (the first, then at most a line per 10 s), never piled up in memory. (libzmq's own \
            queue never fills: libzmq 4.3 aborts the whole process when a peer leaves a \
            connection whose input it paused at a full queue.)
            """,
        options: [
            OptionSpec("endpoint", .list(.string), required: true, "ZeroMQ endpoints, such as tcp://127.0.0.1:5556."),
            OptionSpec("bind", .bool, default: "false", "Bind the endpoints instead of connecting to them."),
            OptionSpec("topics", .list(.string), "Topic prefixes to subscribe to, such as cam1/; everything when unset."),
            OptionSpec("rcvhwm", .integer, default: "1000", min: "0", "Messages waiting for a slow pipeline before further ones are dropped (counted); 0 for no limit."),
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
        let handoff = Handoff(capacity: highWaterMark > 0 ? Int(highWaterMark) : .max)
        let wakeup = try ZMQWakeup()
        let (messages, continuation) = AsyncStream<[ByteBuffer]>.makeStream()
        // The socket lives on a thread of its own, asleep in zmq_poll until a message, room or the stop.
        async let receiving: Void = BlockingIOThread.run(name: "zmq-subscribe") {
            defer { continuation.finish() }
            try receive(handoff, wakeup, continuation, context)
        }
        var rejected = Rejections()
        // Ends when the thread does, or at once when the node is stopped (cancelled).
        for await message in messages {
            handoff.taken()
            guard message.count == 3 else {
                let got = message.count > 3 ? "more than 3" : "\(message.count)"
                await reject("expected 3 frames (topic, header, payload), got \(got)", context, &rejected)
                continue
            }
            do {
                await context.emit(try PacketHeader.packet(header: message[1], payload: message[2]))
            } catch {
                await reject("\(error) (topic '\(UntrustedText.printable(message[0], limit: 64))')", context, &rejected)
            }
        }
        if let owed = rejected.report.owed() {
            context.logger.warning("skipped \(owed.total) malformed messages in all, \(owed.sinceLastTold) since the last line")
        }
        handoff.stop()
        wakeup.wake()
        try await receiving
    }

    /// The thread: takes every message as soon as libzmq has it, and drops
    /// what finds no room downstream. Leaving messages in the socket instead
    /// (as a pause for backpressure would) lets libzmq's queue fill, and
    /// libzmq 4.3.4 and 4.3.5 abort the process when the peer of such a
    /// paused connection leaves while a heartbeat or a peer's PING is due
    /// (`!_io_error` in stream_engine_base.cpp): anyone who can reach the
    /// endpoint could kill camflow. With no libzmq limit the input is never
    /// paused, and this loop, which does no more per message than libzmq's
    /// I/O thread, keeps libzmq's queue short.
    private func receive(_ handoff: Handoff, _ wakeup: ZMQWakeup,
                         _ continuation: AsyncStream<[ByteBuffer]>.Continuation, _ context: NodeContext) throws(ZMQError) {
        let socket = try ZMQSocket(.sub)
        defer { socket.close() }
        try socket.set(ZMQ_RCVHWM, 0)
        try socket.set(ZMQ_LINGER, 0)
        try socket.set(ZMQ_MAXMSGSIZE, int64: Int64(maxMessageSize))
        try link.apply(to: socket)
        try curve?.configureClient(socket)
        for topic in topics { try socket.subscribe(topic) }
        for endpoint in endpoints {
            if bind { try socket.bind(endpoint) } else { try socket.connect(endpoint) }
        }
        var poll = ZMQPollSet([wakeup.receiver, socket])
        var drops = OccasionalReport()
        defer {
            if let owed = drops.owed() {
                context.logger.warning("the pipeline was slower than the publishers: dropped \(owed.total) messages in all, \(owed.sinceLastTold) since the last line")
            }
        }
        receiving: while true {
            while true {
                let reservation = handoff.reserve()
                if reservation == .stopped { break receiving }
                // Without room the message is received and let go, never copied. A fourth part is
                // kept only to tell the message apart from a good one.
                guard let message = try socket.receive(maxParts: reservation == .reserved ? 4 : 0) else {
                    if reservation == .reserved { handoff.taken() }
                    break
                }
                if reservation == .reserved {
                    continuation.yield(message)
                    continue
                }
                context.stats.countDropped()
                if let told = drops.count(now: context.clock.now) {
                    context.logger.warning("the pipeline is slower than the publishers: dropped \(told.total) messages so far, \(told.sinceLastTold) since the last line ('rcvhwm' \(highWaterMark) waiting)")
                }
            }
            if handoff.isStopped { break receiving }
            try poll.wait()
            if poll.hasMessage(0) { wakeup.drain() }
        }
    }

    /// The malformed messages so far: their events' sequence and when the log hears of them.
    private struct Rejections {
        var sequence: UInt64 = 0
        var report = OccasionalReport()
    }

    private func reject(_ reason: String, _ context: NodeContext, _ rejected: inout Rejections) async {
        // A peer flooding garbage must not flood the log: the first, then a line per 10 s at most
        // (each is still counted and sent on as an event).
        if let told = rejected.report.count(now: context.clock.now) {
            context.logger.warning("skipping a malformed message (\(told.total) so far, \(told.sinceLastTold) since the last line): \(reason)")
        }
        context.stats.countDropped()
        await context.emit(.event(Event("zmq-error", [("reason", .string(reason))]), stream: context.id, sequence: rejected.sequence))
        rejected.sequence += 1
    }
}

/// The messages between the receiving thread and the node's task: at most
/// `capacity`; the thread drops what finds no room (it never waits for it).
private final class Handoff: Sendable {
    enum Reservation { case reserved, full, stopped }

    private struct State {
        var room: Int
        var stopped = false
    }

    private let state: Mutex<State>

    init(capacity: Int) { state = Mutex(State(room: capacity)) }

    var isStopped: Bool { state.withLock { $0.stopped } }

    /// Takes a place for one message.
    func reserve() -> Reservation {
        state.withLock { state in
            if state.stopped { return .stopped }
            guard state.room > 0 else { return .full }
            state.room -= 1
            return .reserved
        }
    }

    /// A message left the handoff, or a place reserved was not used.
    func taken() { state.withLock { $0.room += 1 } }

    /// The thread is to end; the caller wakes it.
    func stop() { state.withLock { $0.stopped = true } }
}
