public import Camflow
import ChildIO
import NIOCore
import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif


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


/// The `exec` node: a node in any language.
public enum ExecPlugin: CamflowPlugin {
    public static let name = "exec"
    public static var nodeTypes: [NodeType] { [ExecNode.type] }
}
