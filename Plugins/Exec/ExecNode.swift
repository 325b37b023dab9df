public import Camflow
import NIOCore
import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The framing between camflow and an `exec` child, both ways: per packet a
/// 4-byte big-endian header length, the JSON header (as in ZeroMQ messages),
/// a 4-byte big-endian payload length, the payload. Pure.
enum ExecFraming {
    /// `ackSequence` is the number the child acknowledges this packet with
    /// (the header's `ack_sequence`).
    static func encode(_ packet: Packet, ackSequence: UInt64) -> ByteBuffer {
        var out = head(packet, ackSequence: ackSequence)
        out.writeImmutableBuffer(packet.payload)
        return out
    }

    /// Everything of a packet's framing but its payload, which goes out as
    /// it is (one vectored write of both, no copy of the payload).
    static func head(_ packet: Packet, ackSequence: UInt64) -> ByteBuffer {
        let header = PacketHeader.json(packet) { $0.append("ack_sequence", Int64(bitPattern: ackSequence)) }
        var out = ByteBuffer()
        out.reserveCapacity(8 + header.utf8.count)
        out.writeInteger(UInt32(header.utf8.count))
        out.writeString(header)
        out.writeInteger(UInt32(packet.payload.readableBytes))
        return out
    }

    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    /// What a child sends: a packet, or the acknowledgement that it is done
    /// with the input packet of that sequence number (`{"ack": N}`, no payload).
    enum Message {
        case packet(Packet)
        case ack(UInt64)
    }

    /// The whole length of the message `buffer` starts with, once its
    /// header and payload lengths are in it; nil before.
    static func length(of buffer: ByteBuffer, maxSize: Int = 256 << 20) throws(Malformed) -> Int? {
        guard let headerLength = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        guard Int(headerLength) <= 1 << 20 else { throw Malformed(description: "a header of \(headerLength) bytes") }
        let payloadAt = buffer.readerIndex + 4 + Int(headerLength)
        guard let payloadLength = buffer.getInteger(at: payloadAt, as: UInt32.self) else { return nil }
        guard Int(payloadLength) <= maxSize else { throw Malformed(description: "a payload of \(payloadLength) bytes") }
        return 8 + Int(headerLength) + Int(payloadLength)
    }

    /// The next whole message in `buffer`, consuming it; nil when more bytes are needed.
    static func decode(_ buffer: inout ByteBuffer, maxSize: Int = 256 << 20) throws(Malformed) -> Message? {
        guard let length = try length(of: buffer, maxSize: maxSize), buffer.readableBytes >= length else { return nil }
        let headerLength = Int(buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) ?? 0)
        let payloadLength = length - 8 - headerLength
        buffer.moveReaderIndex(forwardBy: 4)
        let header = buffer.readSlice(length: Int(headerLength)) ?? ByteBuffer()
        buffer.moveReaderIndex(forwardBy: 4)
        let payload = buffer.readSlice(length: Int(payloadLength)) ?? ByteBuffer()
        // {"ack": N}, with or without spaces.
        if let text = header.getString(at: header.readerIndex, length: header.readableBytes), text.hasPrefix("{\"ack\":"),
           let number = UInt64(text.dropFirst(7).drop { $0 == " " }.prefix { $0.isNumber }) {
            return .ack(number)
        }
        do {
            return .packet(try PacketHeader.packet(header: header, payload: payload))
        } catch {
            throw Malformed(description: "\(error)")
        }
    }
}

/// Whole messages out of the buffers a pipe delivers, copying as little as
/// it can: a message inside one buffer is a slice of it (no copy); one that
/// spans buffers is copied once, into a buffer of its whole size.
struct ExecFrameReader {
    /// The start of a message whose rest is in later buffers.
    private var partial = ByteBuffer()
    /// What is left of the latest buffer.
    private var chunk = ByteBuffer()
    let maxSize: Int

    init(maxSize: Int = 256 << 20) {
        self.maxSize = maxSize
    }

    /// Whether bytes of an unfinished message are held.
    var isInsideMessage: Bool { partial.readableBytes > 0 || chunk.readableBytes > 0 }

    /// Adds the next buffer read; take its messages with ``next()`` before adding another.
    mutating func add(_ buffer: ByteBuffer) {
        if chunk.readableBytes == 0 { chunk = buffer } else { chunk.writeImmutableBuffer(buffer) }
    }

    /// The next whole message, nil when the next buffer is needed.
    mutating func next() throws(ExecFraming.Malformed) -> ExecFraming.Message? {
        while partial.readableBytes > 0 {
            if let message = try ExecFraming.decode(&partial, maxSize: maxSize) {
                // Its slices keep that storage: the next partial message gets a buffer of its own.
                if partial.readableBytes == 0 { partial = ByteBuffer() }
                return message
            }
            guard chunk.readableBytes > 0 else { return nil }
            // Only the message's own bytes: what follows it is read in place below.
            let length = try ExecFraming.length(of: partial, maxSize: maxSize)
            let missing = length.map { $0 - partial.readableBytes } ?? chunk.readableBytes
            var piece = chunk.readSlice(length: min(missing, chunk.readableBytes)) ?? ByteBuffer()
            partial.reserveCapacity(minimumWritableBytes: missing)
            partial.writeBuffer(&piece)
        }
        if let message = try ExecFraming.decode(&chunk, maxSize: maxSize) { return message }
        if chunk.readableBytes > 0 {
            partial = ByteBuffer()
            partial.reserveCapacity(try ExecFraming.length(of: chunk, maxSize: maxSize) ?? chunk.readableBytes)
            partial.writeBuffer(&chunk)
        }
        // Not held on to: the pipe's next read goes into a buffer of its own anyway.
        chunk = ByteBuffer()
        return nil
    }
}

/// `exec`: a node in any language, as a child process speaking the framing
/// on stdin and stdout.
struct ExecNode: Node {
    static let type = NodeType(
        name: "exec",
        summary: "Runs a command as a node: packets go to its stdin and come back from its stdout, framed.",
        details: """
            Each packet is a 4-byte big-endian header length, the JSON header (the ZeroMQ header: \
            stream, kind, sequence, codec, timescale, dts, pts, duration, keyframe, width, height, \
            track, track_kind, received_at_ns; events add event and fields), a 4-byte big-endian payload length and \
            the payload; the child answers in the same framing (clients/python: camflow_client.node reads \
            and writes it). The header carries 'ack_sequence'; the child acknowledges a packet, and \
            every one before it, by sending a header {"ack": N} with an empty payload. At most \
            'max-unacked' packets and 'max-unacked-bytes' bytes go out unacknowledged: then camflow \
            waits, so a child that reads but never acknowledges slows its producers instead of \
            filling memory. Its stderr goes to the log under the node's id, lines cut to 1000 \
            characters. A slow child slows its producers: camflow writes only as fast as the child \
            reads. A child that exits or writes malformed framing fails the node, which the restart \
            policy restarts; the unacknowledged packets go to the new child first. The child runs in \
            a process group of its own with a minimal environment (PATH, LANG, LC_ALL, TZ, plus \
            'env' and the variables named in 'inherit-env') and no descriptor of camflow's but its \
            stdin, stdout and stderr: camflow's own secrets and sockets are not in it. On \
            stop the group gets SIGTERM, then SIGKILL after 'stop-timeout'; if camflow itself is \
            killed, the kernel kills the child (PR_SET_PDEATHSIG, through setpriv).
            """,
        options: [
            OptionSpec("command", .list(.string), required: true, "The program and its arguments, such as [python3, node.py]."),
            OptionSpec("env", .list(.string), "Environment variables for the child, as NAME=value."),
            OptionSpec("inherit-env", .list(.string), "Names of camflow's environment variables the child also gets."),
            OptionSpec("cwd", .string, "Working directory; the current one when unset."),
            OptionSpec("max-unacked", .integer, default: "64", min: "1", "Packets sent and not yet acknowledged before camflow waits."),
            OptionSpec("max-unacked-bytes", .size, default: "64MiB", min: "1", "Payload bytes sent and not yet acknowledged before camflow waits."),
            OptionSpec("stop-timeout", .duration, default: "5s", "After SIGTERM, how long the child has before SIGKILL."),
        ],
        accepts: .all,
        emits: .inputKindsAnd(.event),
        make: { options in
            let command = try options.stringList("command")
            guard let executable = command.first, !executable.isEmpty else {
                throw options.error("expected a program and its arguments, such as [python3, node.py]", option: "command")
            }
            var environment: [String: String] = [:]
            for entry in try options.stringList("env") {
                guard let equals = entry.firstIndex(of: "="), equals != entry.startIndex else {
                    throw options.error("expected NAME=value, found '\(entry)'", option: "env")
                }
                environment[String(entry[..<equals])] = String(entry[entry.index(after: equals)...])
            }
            // A minimal environment: whatever camflow itself was given (passwords) stays with camflow.
            environment = ChildEnvironment.minimal(declared: environment, inheriting: try options.stringList("inherit-env"))
            return ExecNode(command: command, environment: environment, directory: try options.ifSet("cwd", options.string),
                            maxUnacked: try options.integer("max-unacked"), maxUnackedBytes: try options.size("max-unacked-bytes"),
                            stopTimeout: try options.duration("stop-timeout"))
        })

    let command: [String]
    let environment: [String: String]
    let directory: String?
    let maxUnacked: Int
    let maxUnackedBytes: Int
    let stopTimeout: Duration

    struct ChildFailed: Error, CustomStringConvertible {
        var description: String
    }

    func run(_ context: NodeContext) async throws {
        // setpriv --pdeathsig: the kernel kills the child when camflow dies, even by SIGKILL (the
        // setting survives the exec of env and of the command). ChildProcess starts it in a process
        // group of its own, so a stop reaches its children too, holding no descriptor of camflow's.
        var arguments = ["--pdeathsig", "KILL", "--", "/usr/bin/env"]
        if let directory { arguments.append("--chdir=\(directory)") }
        let process: ChildProcess
        do {
            process = try ChildProcess(executable: "/usr/bin/setpriv", arguments: arguments + command, environment: environment)
        } catch {
            throw ChildFailed(description: "cannot start \(command.joined(separator: " ")): \(error)")
        }
        let inFlight = InFlight()
        do {
            try await exchange(with: process, inFlight, context)
        } catch {
            _ = await process.stop(grace: stopTimeout, clock: context.clock)
            throw await fail(process, inFlight, cause: error, context)
        }
        guard await process.termination() == .exited(0) else {
            throw await fail(process, inFlight, cause: nil, context)
        }
    }

    /// Packets to the child's stdin and from its stdout, its stderr to the
    /// log, all on NIO's event loops (no thread waits on a pipe); returns
    /// once the child has exited.
    private func exchange(with process: ChildProcess, _ inFlight: InFlight, _ context: NodeContext) async throws {
        let pipes: ChildPipes
        let largePipes = ChildPipes.largePipes.take()
        do {
            pipes = try await ChildPipes.open(process, largePipes: largePipes)
        } catch {
            if largePipes { ChildPipes.largePipes.giveBack() }
            throw ChildFailed(description: "cannot open the child's pipes: \(error)")
        }
        let input = ChildInput(pipes.stdin)
        // A write in progress does not end with its task: closing the pipe fails it.
        defer {
            input.channel.close(promise: nil)
            // Closed by now (executeThenClose), or about to be: the kernel's count follows.
            if largePipes { ChildPipes.largePipes.giveBack() }
        }
        try await withTaskCancellationHandler {
            try await pipes.stdout.executeThenClose { output in
                try await pipes.stderr.executeThenClose { errors in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask { await Self.forwardLog(from: errors, context) }
                        group.addTask {
                            await process.exited()
                            // A writer waiting for acknowledgements learns the child is gone.
                            inFlight.close()
                        }
                        group.addTask {
                            for await packet in context.input {
                                // Bounded: a child that never acknowledges makes camflow wait, not hoard.
                                try await inFlight.waitForRoom(packets: maxUnacked, bytes: maxUnackedBytes, context)
                                // Kept until the child acknowledges it: a child that dies hands it to the next one.
                                let sequence = inFlight.add(packet)
                                try await input.write(packet, ackSequence: sequence)
                            }
                            try await input.drain()
                            try? await input.channel.close()
                        }
                        // Everything the child writes is read to its end: that is when the child is done.
                        do {
                            try await Self.readPackets(from: output, inFlight: inFlight, context)
                        } catch {
                            // Malformed output: stop the child, and the writer with it.
                            process.signalGroup(SIGTERM)
                            input.channel.close(promise: nil)
                            throw error
                        }
                        try await group.waitForAll()
                    }
                }
            }
        } onCancel: {
            input.channel.close(promise: nil)
        }
        try Task.checkCancellation()
    }

    /// Hands the unacknowledged packets back for the next child and reports why this one failed.
    private func fail(_ process: ChildProcess, _ inFlight: InFlight, cause: (any Error)?, _ context: NodeContext) async -> ChildFailed {
        let pending = inFlight.unacknowledged
        for packet in pending.reversed() { context.input.putBack(packet) }
        let status: Int32 = switch await process.termination() {
        case .exited(let code): code
        case .signalled(let signal): signal
        }
        var reason = "\(command.joined(separator: " ")) exited with status \(status)"
        if let failure = cause as? ChildFailed, status == 0 { reason = failure.description }
        await context.emit(.event(Event("exec-error", [("reason", .string(reason)),
                                                       ("unacknowledged", .int(Int64(pending.count)))]),
                                  stream: context.id))
        return ChildFailed(description: reason)
    }

    static func readPackets(from output: NIOAsyncChannelInboundStream<ByteBuffer>, inFlight: InFlight,
                            _ context: NodeContext) async throws {
        var reader = ExecFrameReader()
        do {
            for try await chunk in output {
                reader.add(chunk)
                do {
                    while let message = try reader.next() {
                        switch message {
                        case .packet(let packet): await context.emit(packet)
                        case .ack(let sequence): inFlight.acknowledge(sequence)
                        }
                    }
                } catch {
                    await context.emit(.event(Event("exec-error", [("reason", .string("malformed output: \(error)"))]),
                                              stream: context.id))
                    throw ChildFailed(description: "malformed output from the child: \(error)")
                }
            }
        } catch let error as ChildFailed {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw ChildFailed(description: "reading the child's output failed: \(error)")
        }
        // A cancelled read ends the stream early: that is not the child's end.
        try Task.checkCancellation()
        guard !reader.isInsideMessage else {
            throw ChildFailed(description: "the child's output ended inside a packet")
        }
    }

    static func forwardLog(from errors: NIOAsyncChannelInboundStream<ByteBuffer>, _ context: NodeContext) async {
        var pending = ByteBuffer()
        let log = { (line: ByteBufferView) in
            context.logger.warning("\(UntrustedText.printable(String(decoding: line, as: UTF8.self), limit: 1000))")
        }
        do {
            for try await chunk in errors {
                pending.writeImmutableBuffer(chunk)
                while let newline = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                    log(pending.readableBytesView[..<newline])
                    pending.moveReaderIndex(to: newline + 1)
                }
                // A child that never ends a line must not grow this without bound.
                if pending.readableBytes > 64 << 10 {
                    log(pending.readableBytesView)
                    pending.clear()
                }
                pending.discardReadBytes()
            }
        } catch {
            // The child went, or the node stops: what came is logged below.
        }
        if pending.readableBytes > 0 { log(pending.readableBytesView) }
    }
}

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
    func hasRoom(packets: Int, bytes: Int) -> Bool {
        state.withLock { Self.hasRoom($0, packets: packets, bytes: bytes) }
    }

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

/// The `exec` node: a node in any language.
public enum ExecPlugin: CamflowPlugin {
    public static let name = "exec"
    public static var nodeTypes: [NodeType] { [ExecNode.type] }
}
