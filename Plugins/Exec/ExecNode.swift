public import Camflow
import Foundation
import NIOCore
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
        let header = PacketHeader.json(packet) { $0.append("ack_sequence", Int64(bitPattern: ackSequence)) }
        var out = ByteBuffer()
        out.reserveCapacity(8 + header.utf8.count + packet.payload.readableBytes)
        out.writeInteger(UInt32(header.utf8.count))
        out.writeString(header)
        out.writeInteger(UInt32(packet.payload.readableBytes))
        out.writeImmutableBuffer(packet.payload)
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

    /// The next whole message in `buffer`, consuming it; nil when more bytes are needed.
    static func decode(_ buffer: inout ByteBuffer, maxSize: Int = 256 << 20) throws(Malformed) -> Message? {
        guard let headerLength = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        guard Int(headerLength) <= 1 << 20 else { throw Malformed(description: "a header of \(headerLength) bytes") }
        let payloadAt = buffer.readerIndex + 4 + Int(headerLength)
        guard let payloadLength = buffer.getInteger(at: payloadAt, as: UInt32.self) else { return nil }
        guard Int(payloadLength) <= maxSize else { throw Malformed(description: "a payload of \(payloadLength) bytes") }
        guard buffer.readableBytes >= 8 + Int(headerLength) + Int(payloadLength) else { return nil }
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
        // A child that exits leaves a closed pipe: writing to it must be an error, not SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
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
        let input = process.stdin
        let output = process.stdout
        let errors = process.stderr
        for fd in [input, output, errors] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        let processGroup = process.pid
        defer { Self.stop(group: processGroup, process: process, grace: stopTimeout) }
        let inFlight = InFlight()
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await Self.forwardLog(from: errors, context) }
                group.addTask {
                    for await packet in context.input {
                        // Bounded: a child that never acknowledges makes camflow wait, not hoard.
                        var idle = 0
                        let waitStarted = ContinuousClock.now
                        var warned = false
                        while !inFlight.hasRoom(packets: maxUnacked, bytes: maxUnackedBytes) {
                            guard !process.hasExited else { break }
                            if !warned, ContinuousClock.now - waitStarted > .seconds(5) {
                                warned = true
                                context.logger.warning("the child has not acknowledged \(inFlight.count) packets for 5s; waiting (max-unacked: \(maxUnacked))")
                            }
                            try await Self.nap(&idle)
                        }
                        // Kept until the child acknowledges it: a child that dies hands it to the next one.
                        let sequence = inFlight.add(packet)
                        try await Self.writeAll(ExecFraming.encode(packet, ackSequence: sequence), to: input)
                    }
                    process.closeStdin()
                }
                // Everything the child writes is read to its end: that is when the child is done.
                do {
                    try await Self.readPackets(from: output, inFlight: inFlight, context)
                } catch {
                    // Malformed output: stop the child, so the writer's next write fails too.
                    kill(-processGroup, SIGTERM)
                    throw error
                }
                try await group.waitForAll()
            }
        } catch {
            Self.stop(group: processGroup, process: process, grace: stopTimeout)
            throw await fail(process, inFlight, cause: error, context)
        }
        guard process.wait() == .exited(0) else {
            throw await fail(process, inFlight, cause: nil, context)
        }
    }

    /// Hands the unacknowledged packets back for the next child and reports why this one failed.
    private func fail(_ process: ChildProcess, _ inFlight: InFlight, cause: (any Error)?, _ context: NodeContext) async -> ChildFailed {
        let pending = inFlight.unacknowledged
        for packet in pending.reversed() { context.input.putBack(packet) }
        let status: Int32 = switch process.wait() {
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

    /// Stops the child's whole process group: SIGTERM, up to `grace` to exit,
    /// then SIGKILL. Returns once the child has been reaped.
    static func stop(group: Int32, process: ChildProcess, grace: Duration) {
        guard !process.hasExited else {
            _ = process.wait()
            return
        }
        kill(-group, SIGTERM)
        let deadline = ContinuousClock.now + grace
        while !process.hasExited, ContinuousClock.now < deadline { usleep(10_000) }
        // The group, not just the child: what it started goes too.
        kill(-group, SIGKILL)
        _ = process.wait()
    }

    /// Waits for a non-blocking descriptor without holding a thread: short naps while idle.
    private static func nap(_ idle: inout Int) async throws {
        idle = min(idle + 1, 20)
        try await Task.sleep(for: .milliseconds(idle))
    }

    static func writeAll(_ buffer: ByteBuffer, to fd: Int32) async throws {
        var rest = buffer
        var idle = 0
        while rest.readableBytes > 0 {
            let written = rest.withUnsafeReadableBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written > 0 {
                rest.moveReaderIndex(forwardBy: written)
                idle = 0
            } else if errno == EAGAIN || errno == EINTR {
                try await nap(&idle)
            } else {
                throw ChildFailed(description: "the child stopped reading (\(String(cString: strerror(errno))))")
            }
        }
    }

    static func readPackets(from fd: Int32, inFlight: InFlight, _ context: NodeContext) async throws {
        var buffer = ByteBuffer()
        var idle = 0
        while true {
            var chunk = ByteBufferAllocator().buffer(capacity: 65536)
            var result = 0
            var failure: Int32 = 0
            _ = chunk.writeWithUnsafeMutableBytes(minimumWritableBytes: 65536) { raw in
                result = Glibc.read(fd, raw.baseAddress, raw.count)
                failure = errno
                return max(0, result)
            }
            if result < 0 {
                guard failure == EAGAIN || failure == EINTR else {
                    throw ChildFailed(description: "reading the child's output failed: \(String(cString: strerror(failure)))")
                }
                try await nap(&idle)
                continue
            }
            if result == 0 {
                guard buffer.readableBytes == 0 else {
                    throw ChildFailed(description: "the child's output ended inside a packet")
                }
                return
            }
            idle = 0
            buffer.writeBuffer(&chunk)
            do {
                while let message = try ExecFraming.decode(&buffer) {
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
    }

    static func forwardLog(from fd: Int32, _ context: NodeContext) async {
        var pending = ""
        var idle = 0
        while true {
            var bytes = [UInt8](repeating: 0, count: 4096)
            let count = Glibc.read(fd, &bytes, bytes.count)
            if count > 0 {
                idle = 0
                pending += String(decoding: bytes.prefix(count), as: UTF8.self)
                while let newline = pending.firstIndex(of: "\n") {
                    context.logger.warning("\(UntrustedText.printable(String(pending[..<newline]), limit: 1000))")
                    pending = String(pending[pending.index(after: newline)...])
                }
                // A child that never ends a line must not grow this without bound.
                if pending.utf8.count > 64 << 10 {
                    context.logger.warning("\(UntrustedText.printable(pending, limit: 1000))")
                    pending = ""
                }
            } else if count < 0 && (errno == EAGAIN || errno == EINTR) {
                do { try await nap(&idle) } catch { return }
            } else {
                if !pending.isEmpty { context.logger.warning("\(UntrustedText.printable(pending, limit: 1000))") }
                return
            }
        }
    }
}

/// Packets written to the child and not yet acknowledged, oldest first.
final class InFlight: Sendable {
    private let state = Mutex<(next: UInt64, packets: [(UInt64, Packet)], bytes: Int)>((0, [], 0))

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
        state.withLock { $0.packets.isEmpty || ($0.packets.count < packets && $0.bytes < bytes) }
    }

    /// The child is done with `sequence` and everything before it.
    func acknowledge(_ sequence: UInt64) {
        state.withLock { state in
            state.packets.removeAll { $0.0 <= sequence }
            state.bytes = state.packets.reduce(0) { $0 + $1.1.payload.readableBytes }
        }
    }

    var unacknowledged: [Packet] { state.withLock { $0.packets.map(\.1) } }
}

/// The `exec` node: a node in any language.
public enum ExecPlugin: CamflowPlugin {
    public static let name = "exec"
    public static var nodeTypes: [NodeType] { [ExecNode.type] }
}
