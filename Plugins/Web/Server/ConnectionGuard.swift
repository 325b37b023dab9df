import HummingbirdCore
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore

/// The bounds on who may hold a connection to the web sink, and for how long
/// before it has said what it wants. Shared by every connection of one server.
final class ConnectionLimits: Sendable {
    let maxConnections: Int
    let maxPerClient: Int
    let headerTimeout: TimeAmount
    private let open = NIOLockedValueBox<(total: Int, perClient: [String: Int])>((0, [:]))
    private let refused: @Sendable (String) -> Void

    init(maxConnections: Int, maxPerClient: Int, headerTimeout: TimeAmount, nodeID: String) {
        self.maxConnections = maxConnections
        self.maxPerClient = maxPerClient
        self.headerTimeout = headerTimeout
        refused = { reason in
            Counter(label: "camflow_web_connections_refused_total", dimensions: [("node", nodeID), ("reason", reason)])
                .increment()
        }
    }

    /// Takes a place for a connection from `client`; nil (and counted) when there is none.
    func admit(_ client: String) -> String? {
        let reason: String? = open.withLockedValue { state in
            if state.total >= maxConnections { return "max-connections" }
            if state.perClient[client, default: 0] >= maxPerClient { return "max-connections-per-client" }
            state.total += 1
            state.perClient[client, default: 0] += 1
            return nil
        }
        if let reason { refused(reason) }
        return reason
    }

    func release(_ client: String) {
        open.withLockedValue { state in
            state.total -= 1
            state.perClient[client, default: 1] -= 1
            if state.perClient[client] == 0 { state.perClient[client] = nil }
        }
    }

    func countRefused(_ reason: String) { refused(reason) }

    var openConnections: Int { open.withLockedValue { $0.total } }
}

/// The first handler of every connection: refuses one over the limits at
/// once, and closes one that has not finished its request headers within
/// the header timeout (a client that opens sockets and never speaks must not
/// hold descriptors the camera, the recorder and ZeroMQ need). Raw bytes in,
/// the same bytes out; after the first request head it only counts the
/// connection until it closes.
final class ConnectionGuard: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let limits: ConnectionLimits
    private var client: String?
    private var headerDeadline: Scheduled<Void>?
    private var headComplete = false
    /// The last bytes seen, to find "\r\n\r\n" across reads.
    private var tail: UInt32 = 0

    init(limits: ConnectionLimits) {
        self.limits = limits
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    private func start(_ context: ChannelHandlerContext) {
        guard client == nil else { return }
        let address = context.channel.remoteAddress?.ipAddress ?? "unknown"
        if limits.admit(address) != nil {
            client = ""
            context.close(promise: nil)
            return
        }
        client = address
        let limits = self.limits
        headerDeadline = context.eventLoop.assumeIsolated().scheduleTask(in: limits.headerTimeout) { [weak self] in
            guard let self, !self.headComplete else { return }
            limits.countRefused("header-timeout")
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !headComplete {
            let bytes = unwrapInboundIn(data)
            for byte in bytes.readableBytesView {
                tail = tail << 8 | UInt32(byte)
                if tail == 0x0D0A_0D0A {
                    headComplete = true
                    headerDeadline?.cancel()
                    headerDeadline = nil
                    break
                }
            }
        }
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        headerDeadline?.cancel()
        headerDeadline = nil
        if let client, !client.isEmpty { limits.release(client) }
        client = ""
        context.fireChannelInactive()
    }
}

/// A server child channel that puts a ``ConnectionGuard`` first, then
/// sets up the channel it wraps (HTTP/1 with the WebSocket upgrade).
struct GuardedChildChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base
    let limits: ConnectionLimits

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        do {
            try channel.pipeline.syncOperations.addHandler(ConnectionGuard(limits: limits))
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return base.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        // Hummingbird logs at error level every connection that ends before its upgrade is
        // decided, which the guard does to hostile clients by the hundred: camflow counts and
        // logs refusals itself, so per-connection logs from below stay quiet.
        var quiet = logger
        quiet.logLevel = .critical
        await base.handle(value: value, logger: quiet)
    }
}
