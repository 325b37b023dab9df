import Camflow
import CZeroMQ
import Dispatch
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
            becomes a 'zmq-error' event or a dropped connection and is skipped. The socket lives on \
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
        let (messages, continuation) = AsyncStream<[ByteBuffer]>.makeStream()
        let receiver = Task.detached { [endpoints, bind, topics, highWaterMark, maxMessageSize, curve, link] in
            try await ZMQThread.run("zmq-subscribe") {
                defer { continuation.finish() }
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
                while !handoff.isStopped {
                    // A fourth part is kept only to tell the message apart from a good one.
                    guard let message = try socket.receive(timeout: .milliseconds(100), maxParts: 4) else { continue }
                    // Wait for room downstream: the socket's own queue then fills, and the publisher drops.
                    handoff.waitForRoom()
                    continuation.yield(message)
                }
            }
        }
        var sequence: UInt64 = 0
        await withTaskCancellationHandler {
            for await message in messages {
                handoff.taken()
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
        } onCancel: {
            handoff.stop()
        }
        handoff.stop()
        try await receiver.value
    }

    private func reject(_ reason: String, _ context: NodeContext, _ sequence: inout UInt64) async {
        context.logger.warning("skipping a malformed message: \(reason)")
        context.stats.countDropped()
        await context.emit(.event(Event("zmq-error", [("reason", .string(reason))]), stream: context.id, sequence: sequence))
        sequence += 1
    }
}

/// Flow control between the receiving thread and the node's task: at most
/// `capacity` messages in between. The count lives in a mutex and the
/// semaphore only wakes the thread: a semaphore created with room and freed
/// with messages still in flight (a stop mid-stream) is a crash in
/// libdispatch, one created with none never is.
private final class Handoff: Sendable {
    private let room = Mutex(16)
    private let wake = DispatchSemaphore(value: 0)
    private let stopped = Atomic<Bool>(false)

    var isStopped: Bool { stopped.load(ordering: .acquiring) }

    func waitForRoom() {
        while !isStopped {
            let took = room.withLock { room in
                guard room > 0 else { return false }
                room -= 1
                return true
            }
            if took { return }
            _ = wake.wait(timeout: .now() + .milliseconds(100))
        }
    }

    func taken() {
        room.withLock { $0 += 1 }
        wake.signal()
    }

    func stop() { stopped.store(true, ordering: .releasing) }
}
