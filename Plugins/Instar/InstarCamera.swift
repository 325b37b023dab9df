import Camflow
import Logging
import InstarProtocol
import NIOCore
import NIOSSL
import NIOWebSocket
import Synchronization

/// `instar-camera`: the live fragmented-MP4 stream of an INSTAR camera over
/// its WebSocket server.
struct InstarCamera: Node {
    static let type = NodeType(
        name: "instar-camera",
        summary: "Streams fMP4 from an INSTAR camera's WebSocket server (ws:// or wss://), reconnecting on failure.",
        details: """
            Connects to the camera's WebSocket endpoint with HTTP Basic authentication on the upgrade \
            (or ?user=&pwd= with 'auth: query'), sends the start message ('livestream' or \
            'livestream/<channel>'), and emits one bytes packet per binary message, without copying \
            it. Reads the next message only when its output has room, so a slow pipeline slows the \
            camera through TCP flow control. Sends 'keep-alive' every 'keep-alive' messages and after \
            'keep-alive-interval' of client silence. No media for 'idle-timeout' means the connection \
            is dead. Reconnects with exponential backoff and jitter; the first packet after a \
            reconnect is flagged as a discontinuity. After 'auth-retry-after' refused logins in a \
            row it says so once and tries only every 'auth-retry-interval'. Emits events: \
            connected, disconnected (reason), auth-failed, server-error (text starting 'error:'), \
            server-text; camera text is cut to 256 characters with control characters escaped, \
            and repeats are counted rather than repeated. A handshake that fails in any way \
            (refused, a wrong Sec-WebSocket-Accept, a timeout) closes the connection at once. On \
            stop it sends the stop message and closes the socket. Passwords never appear in logs, \
            events or errors, with 'auth: query' too.
            """,
        options: [
            OptionSpec("url", .string, "Camera URL: ws://host[:port][/ws] or wss://...; or set 'host' and friends."),
            OptionSpec("protocol", .choice(["ws", "wss"]), default: "ws", "With 'host': plain or TLS WebSocket."),
            OptionSpec("host", .string, "With no 'url': the camera's address."),
            OptionSpec("port", .integer, min: "1", max: "65535", "With 'host': the port; 80 for ws, 443 for wss."),
            OptionSpec("endpoint", .string, default: "/ws", "With 'host': the path of the WebSocket endpoint."),
            OptionSpec("username", .string, "User name for the camera."),
            OptionSpec("password", .secret, "Password for the camera; never printed. Use ${VAR}."),
            OptionSpec("auth", .choice(CameraAuthentication.allCases.map(\.rawValue)), default: "basic",
                       "How credentials are sent: HTTP Basic, or ?user=&pwd= in the URL."),
            OptionSpec("channel", .integer, "Stream channel: 11, 12 or 13; the start message becomes livestream/<channel>."),
            OptionSpec("start-message", .string, "Text that starts the stream; default livestream[/<channel>]."),
            OptionSpec("stop-message", .string, default: "stop", "Text that stops the stream on shutdown."),
            OptionSpec("keep-alive", .integer, default: "10", min: "0", "Send keep-alive every N received messages; 0: never."),
            OptionSpec("keep-alive-interval", .duration, default: "20s", above: "0s", "Send keep-alive after this long without sending."),
            OptionSpec("idle-timeout", .duration, default: "10s", above: "0s", "No media for this long: the connection is dead, reconnect."),
            OptionSpec("connect-timeout", .duration, default: "10s", "Give up a TCP connect after this long."),
            OptionSpec("ca-file", .string, "PEM file of the certificate authority (or the camera's self-signed certificate) to trust."),
            OptionSpec("insecure", .bool, default: "false", "Accept any certificate (a camera's self-signed one) without checking."),
            OptionSpec("max-message-size", .size, default: "16MiB", min: "1KiB", max: "64MiB", "Largest WebSocket message accepted."),
            OptionSpec("stream", .string, "Stream name of the packets; the node id when unset."),
        ] + CameraReconnectLoop.options,
        accepts: [],
        emits: .kinds([.bytes, .event]), reportsConnection: true,
        make: { options in try InstarCamera(options) })

    let settings: CameraConnection.Settings
    let startMessage: String
    let stopMessage: String
    let keepAliveEvery: Int
    let keepAliveInterval: Duration
    let idleTimeout: Duration
    let reconnection: CameraReconnectLoop
    let stream: String

    init(_ options: NodeOptions) throws {
        func fail(_ name: String, _ message: String) throws -> Never {
            throw options.error(message, option: name)
        }
        var username = try options.ifSet("username", options.string)
        var password = try options.ifSet("password", options.string)
        let endpoint: CameraEndpoint
        if let url = try options.ifSet("url", options.string) {
            if options.isSet("host") { try fail("host", "set either 'url' or 'host', not both") }
            do {
                let parsed = try CameraEndpoint.parse(url)
                endpoint = parsed.endpoint
                username = username ?? parsed.username
                password = password ?? parsed.password
            } catch {
                try fail("url", error.message)
            }
        } else if let host = try options.ifSet("host", options.string) {
            endpoint = CameraEndpoint(secure: try options.string("protocol") == "wss", host: host,
                                      port: try options.ifSet("port", options.integer), path: try options.string("endpoint"))
        } else {
            throw options.error("needs 'url' (ws://host/ws) or 'host'")
        }
        let channel = try options.ifSet("channel", options.integer)
        if let channel, !CameraCommand.channels.contains(channel) {
            try fail("channel", "'channel' must be 11, 12 or 13, found \(channel)")
        }
        var tls: TLSConfiguration?
        if endpoint.secure {
            var configuration = TLSConfiguration.makeClientConfiguration()
            if try options.bool("insecure") {
                configuration.certificateVerification = .none
            } else if let caFile = try options.ifSet("ca-file", options.string) {
                configuration.trustRoots = .file(caFile)
            }
            tls = configuration
        }
        settings = CameraConnection.Settings(
            endpoint: endpoint, username: username, password: password,
            authentication: try options.choice("auth"), tls: tls, maxMessageSize: try options.size("max-message-size"),
            connectTimeout: .nanoseconds(try options.duration("connect-timeout").nanoseconds))
        startMessage = try options.ifSet("start-message", options.string)
            ?? CameraCommand.startLivestream(channel: channel).text
        stopMessage = try options.string("stop-message")
        keepAliveEvery = try options.integer("keep-alive")
        keepAliveInterval = try options.duration("keep-alive-interval")
        idleTimeout = try options.duration("idle-timeout")
        reconnection = try CameraReconnectLoop(options)
        stream = try options.ifSet("stream", options.string) ?? options.nodeID
    }

    func run(_ context: NodeContext) async throws {
        let counters = Counters()
        try await reconnection.run(context, endpoint: "\(settings.endpoint)") { discontinuity in
            await session(context, counters: counters, discontinuity: discontinuity)
        } emit: { name, fields in
            await emit(context, counters, name, fields)
        }
    }

    typealias SessionEnd = CameraSessionEnd

    /// Counters that live across sessions.
    final class Counters: Sendable {
        let bytesSequence = Atomic<UInt64>(0)
        let eventSequence = Atomic<UInt64>(0)
        /// What the camera says in text, rate-limited across reconnects.
        let text = Mutex(RepeatLimiter())
    }

    private func emit(_ context: NodeContext, _ counters: Counters, _ name: String,
                      _ fields: [(key: String, value: EventValue)]) async {
        let sequence = counters.eventSequence.add(1, ordering: .relaxed).oldValue
        await context.emit(.event(Event(name, fields), stream: stream, sequence: sequence))
    }

    /// One connection, from connect to close. Never throws: how it ended is the result.
    private func session(_ context: NodeContext, counters: Counters, discontinuity: Bool) async -> SessionEnd {
        let socket: CameraConnection.WebSocket
        do {
            socket = try await CameraConnection.open(settings)
        } catch CameraConnectionError.authenticationFailed(let status) {
            return .authenticationFailed(status: status, scheme: "HTTP")
        } catch is CancellationError {
            return .stopped
        } catch {
            if Task.isCancelled { return .stopped }
            return .ended(reason: "\(error)", deliveredMedia: false)
        }
        context.logger.info("connected to \(settings.endpoint)")
        context.stats.setConnected(true)
        await emit(context, counters, "connected", [("url", .string("\(settings.endpoint)"))])
        let state = SessionState(clock: context.clock)
        let channel = socket.channel
        let stopFrame = Self.textFrame(stopMessage, allocator: channel.allocator)
        do {
            return try await withTaskCancellationHandler {
                try await socket.executeThenClose { inbound, outbound in
                    try await outbound.write(Self.textFrame(startMessage, allocator: channel.allocator))
                    state.sent()
                    return try await withThrowingTaskGroup(of: SessionEnd?.self) { group in
                        group.addTask {
                            try await watchdog(state: state, outbound: outbound, allocator: channel.allocator,
                                               clock: context.clock)
                        }
                        group.addTask {
                            try await read(inbound, outbound: outbound, allocator: channel.allocator, state: state,
                                           counters: counters, discontinuity: discontinuity, context)
                        }
                        let end = try await group.next() ?? nil
                        group.cancelAll()
                        return end ?? (Task.isCancelled ? .stopped : .ended(reason: "the connection ended", deliveredMedia: state.deliveredMedia))
                    }
                }
            } onCancel: {
                // Stop: ask the camera to stop and close cleanly; the read loop then ends.
                channel.write(stopFrame, promise: nil)
                channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(),
                                                     data: channel.allocator.buffer(integer: UInt16(1000))), promise: nil)
            }
        } catch {
            if Task.isCancelled { return .stopped }
            return .ended(reason: "\(error)", deliveredMedia: state.deliveredMedia)
        }
    }

    /// Reads messages one at a time, each only after the previous one was taken downstream.
    private func read(_ inbound: NIOAsyncChannelInboundStream<WebSocketFrame>,
                      outbound: NIOAsyncChannelOutboundWriter<WebSocketFrame>, allocator: ByteBufferAllocator,
                      state: SessionState, counters: Counters, discontinuity: Bool,
                      _ context: NodeContext) async throws -> SessionEnd? {
        var first = discontinuity
        var received = 0
        for try await frame in inbound {
            switch frame.opcode {
            case .binary, .continuation:
                state.media()
                let sequence = counters.bytesSequence.add(1, ordering: .relaxed).oldValue
                await context.emit(Packet(kind: .bytes, stream: stream, sequence: sequence,
                                          payload: frame.maskKey == nil ? frame.data : frame.unmaskedData,
                                          discontinuity: first))
                first = false
            case .text:
                // Camera text is a peer's: cut, escaped, and its repeats counted rather than repeated.
                let data = frame.maskKey == nil ? frame.data : frame.unmaskedData
                let isError = data.readableBytesView.starts(with: "error:".utf8)
                let text = UntrustedText.printable(data)
                let now = context.clock.now
                for line in counters.text.withLock({ $0.admit(text, now: now) }) {
                    if isError {
                        context.logger.warning("camera \(settings.endpoint) says: \(line)")
                        await emit(context, counters, "server-error", [("text", .string(line))])
                    } else {
                        await emit(context, counters, "server-text", [("text", .string(line))])
                    }
                }
            case .ping:
                try await outbound.write(WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData))
                continue
            case .connectionClose:
                var data = frame.unmaskedData
                let code = data.readInteger(as: UInt16.self).map { " (code \($0))" } ?? ""
                if Task.isCancelled { return .stopped }
                return .ended(reason: "the camera closed the connection\(code)", deliveredMedia: state.deliveredMedia)
            default:
                continue
            }
            received += 1
            if keepAliveEvery > 0, received % keepAliveEvery == 0 {
                try await outbound.write(Self.textFrame(CameraCommand.keepAlive.text, allocator: allocator))
                state.sent()
            }
        }
        if Task.isCancelled { return .stopped }
        return .ended(reason: "the camera hung up", deliveredMedia: state.deliveredMedia)
    }

    /// Sends keep-alives when the client has been quiet, and ends the session
    /// when media stops. Sleeps until the earlier of the two deadlines; media
    /// that came meanwhile moved the idle deadline, so waking early only
    /// re-arms the wait for the time left (a timer per message instead would
    /// cost one at frame rate).
    private func watchdog(state: SessionState, outbound: NIOAsyncChannelOutboundWriter<WebSocketFrame>,
                          allocator: ByteBufferAllocator, clock: any PipelineClock) async throws -> SessionEnd? {
        while true {
            let idleAt = state.lastMedia.advanced(by: idleTimeout)
            let keepAliveAt = state.lastSent.advanced(by: keepAliveInterval)
            let now = clock.now
            if now >= idleAt {
                return .ended(reason: "no media for \(idleTimeout.shortDescription) (idle timeout)", deliveredMedia: state.deliveredMedia)
            }
            if now >= keepAliveAt {
                try await outbound.write(Self.textFrame(CameraCommand.keepAlive.text, allocator: allocator))
                state.sent()
                continue
            }
            try await clock.sleep(until: min(idleAt, keepAliveAt))
        }
    }

    static func textFrame(_ text: String, allocator: ByteBufferAllocator) -> WebSocketFrame {
        WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: allocator.buffer(string: text))
    }
}

/// Times shared by a session's reader and watchdog, read from the pipeline's
/// clock: the reader stores one per message, so they are atomics of
/// nanoseconds since the session began rather than a lock.
private final class SessionState: Sendable {
    private let clock: any PipelineClock
    private let origin: ContinuousClock.Instant
    private let lastMediaAt = Atomic<Int64>(0)
    private let lastSentAt = Atomic<Int64>(0)
    private let anyMedia = Atomic<Bool>(false)

    init(clock: any PipelineClock) {
        self.clock = clock
        origin = clock.now
    }

    var lastMedia: ContinuousClock.Instant { origin.advanced(by: .nanoseconds(lastMediaAt.load(ordering: .relaxed))) }
    var lastSent: ContinuousClock.Instant { origin.advanced(by: .nanoseconds(lastSentAt.load(ordering: .relaxed))) }
    var deliveredMedia: Bool { anyMedia.load(ordering: .relaxed) }

    func media() {
        lastMediaAt.store(sinceOrigin(), ordering: .relaxed)
        anyMedia.store(true, ordering: .relaxed)
    }

    func sent() { lastSentAt.store(sinceOrigin(), ordering: .relaxed) }

    private func sinceOrigin() -> Int64 { origin.duration(to: clock.now).nanoseconds }
}
