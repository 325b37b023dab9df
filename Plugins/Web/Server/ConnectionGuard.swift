import Camflow
import HummingbirdCore
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// The bounds on who may hold a connection to the web sink, and for how long
/// before it has said what it wants. Shared by every connection of one server.
final class ConnectionLimits: Sendable {
    let maxConnections: Int
    let maxPerClient: Int
    let headerTimeout: TimeAmount
    /// How long a response may wait with none of its bytes taken by the client.
    let writeTimeout: TimeAmount
    let writeCheckInterval: TimeAmount
    /// The server's credentials: a request without them is answered and its connection closed.
    let credentials: WebCredentials?
    private let open = NIOLockedValueBox<(total: Int, perClient: [String: Int])>((0, [:]))
    private let refused: @Sendable (String) -> Void

    init(maxConnections: Int, maxPerClient: Int, headerTimeout: TimeAmount, writeTimeout: TimeAmount,
         credentials: WebCredentials? = nil, nodeID: String) {
        self.credentials = credentials
        self.maxConnections = maxConnections
        self.maxPerClient = maxPerClient
        self.headerTimeout = headerTimeout
        self.writeTimeout = writeTimeout
        writeCheckInterval = .nanoseconds(max(writeTimeout.nanoseconds / 4, 1_000_000))
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
/// once, closes one that has not sent a whole request head within the header
/// timeout (a client that opens sockets and never speaks must not hold
/// descriptors the camera, the recorder and ZeroMQ need), and closes one
/// whose peer takes no bytes of a response for the write timeout. Raw bytes
/// in and out, unchanged. It also tells the connection's ``ConnectionPeer``
/// when the client has gone (its end of the stream closed).
final class ConnectionGuard: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    /// Never unwrapped: whatever the encoders below write passes as it is.
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    let limits: ConnectionLimits
    let peer: ConnectionPeer
    private var client: String?
    private var headerDeadline: Scheduled<Void>?
    private var headComplete = false
    /// Writes handed on toward the socket and not yet written out.
    private var pendingWrites = 0
    /// When the client last took bytes, or when writes began to wait.
    private var lastProgress = NIODeadline.now()
    /// Since the last check: writes completed, bytes handed on, and the bytes the channel held then.
    private var completedSinceCheck = 0
    private var addedSinceCheck = 0
    private var bufferedAtCheck = 0
    /// The bytes the client's TCP had acknowledged at the last check.
    private var ackedAtCheck: UInt64 = 0
    private var writeCheck: Scheduled<Void>?

    init(limits: ConnectionLimits, peer: ConnectionPeer) {
        self.limits = limits
        self.peer = peer
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
        // An IPv6 /64 counts as one client: one host holds a whole /64.
        let address = context.channel.remoteAddress.map { PeerGroup.of($0) } ?? "unknown"
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

    /// The HTTP decoder has parsed a whole request head: the header timeout is over.
    func headReceived() {
        headComplete = true
        headerDeadline?.cancel()
        headerDeadline = nil
    }

    func countRefused(_ reason: String) { limits.countRefused(reason) }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let promise = promise ?? context.eventLoop.makePromise()
        if pendingWrites == 0 {
            lastProgress = .now()
            bufferedAtCheck = buffered(context)
            ackedAtCheck = Self.bytesAcknowledged(context.channel)
            addedSinceCheck = 0
        }
        pendingWrites += 1
        addedSinceCheck += unwrapOutboundIn(data).readableBytes
        promise.futureResult.assumeIsolated().whenComplete { [weak self] _ in
            guard let self else { return }
            self.pendingWrites -= 1
            self.completedSinceCheck += 1
        }
        if writeCheck == nil { scheduleWriteCheck(context) }
        context.write(data, promise: promise)
    }

    private func buffered(_ context: ChannelHandlerContext) -> Int {
        (try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
    }

    /// The bytes the client has acknowledged on this connection: Linux's `tcpi_bytes_acked`
    /// (byte 120 of `tcp_info` since Linux 4.1, zero before), which moves whenever the client
    /// reads, however full the kernel's send buffer (the socket only turns writable again
    /// once a third of that buffer, up to megabytes, has drained).
    static func bytesAcknowledged(_ channel: any Channel) -> UInt64 {
        #if os(Linux)
        typealias Info = (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                          UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)
        guard let provider = channel as? any SocketOptionProvider else { return 0 }
        var acked: UInt64 = 0
        let info: EventLoopFuture<Info> = provider.unsafeGetSocketOption(level: .tcp, name: .tcp_info)
        // Answered at once on the channel's own event loop, where this runs.
        info.assumeIsolated().whenSuccess { acked = $0.15 }
        return acked
        #else
        return 0
        #endif
    }

    /// While writes wait, looks four times per write timeout whether the client took any
    /// bytes (its TCP acknowledged more, a write completed, or the channel holds fewer
    /// bytes than were handed to it).
    private func scheduleWriteCheck(_ context: ChannelHandlerContext) {
        writeCheck = context.eventLoop.assumeIsolated().scheduleTask(in: limits.writeCheckInterval) { [weak self] in
            guard let self else { return }
            self.writeCheck = nil
            let buffered = self.buffered(context)
            let acked = Self.bytesAcknowledged(context.channel)
            if acked > self.ackedAtCheck || self.completedSinceCheck > 0 || buffered < self.bufferedAtCheck + self.addedSinceCheck {
                self.lastProgress = .now()
            }
            self.ackedAtCheck = acked
            self.completedSinceCheck = 0
            self.addedSinceCheck = 0
            self.bufferedAtCheck = buffered
            guard self.pendingWrites > 0 else { return }
            if self.lastProgress + self.limits.writeTimeout <= .now() {
                // The client takes nothing: its slot (a clip, a viewer, a connection) goes back.
                self.limits.countRefused("write-timeout")
                context.close(promise: nil)
            } else {
                self.scheduleWriteCheck(context)
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Half-closure is allowed, so a client that hangs up shows as the end of its input.
        if let event = event as? ChannelEvent, event == .inputClosed { peer.hungUp() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        headerDeadline?.cancel()
        headerDeadline = nil
        writeCheck?.cancel()
        writeCheck = nil
        if let client, !client.isEmpty { limits.release(client) }
        client = ""
        peer.hungUp()
        context.fireChannelInactive()
    }
}

/// Sits right after the HTTP request decoder and reads every request head:
/// tells the ``ConnectionGuard`` when the first is whole, and refuses (400,
/// then the connection closed) a head the decoder rejects (bad bytes, method
/// or version, a negative length, headers over the limits), a body framed by
/// a transfer-encoding other than chunked (read as none, the request hidden
/// in it would be served next), and any request body but a WHEP offer's (a
/// POST to /whep/ with a Content-Length of at most 64 KiB; a larger one is 413): no other route takes
/// one, and a body trickled a byte a minute would hold the connection for
/// ever (the idle timeout counts any read). Nothing else would answer a bad
/// first head: the upgrade handler that reads it ignores decoder errors and
/// the connection would wait for a head that never comes. A WebSocket
/// upgrade removes it (what follows is not HTTP).
final class RequestHeadGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let connection: ConnectionGuard
    private var headsSeen = 0
    private var refused = false

    init(connection: ConnectionGuard) {
        self.connection = connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        guard case .head(var head) = unwrapInboundIn(data) else {
            context.fireChannelRead(data)
            return
        }
        if headsSeen == 0 { connection.headReceived() }
        headsSeen += 1
        let codings = head.headers[canonicalForm: "transfer-encoding"].map { $0.lowercased() }
        let length = head.headers.first(name: "content-length").flatMap { Int($0) } ?? 0
        // Any Upgrade naming websocket, so that no upgrade the NIO handler would make is missed.
        let webSocket = head.headers[canonicalForm: "upgrade"].contains { $0.lowercased().contains("websocket") }
        let upgrading = head.headers[canonicalForm: "connection"].contains { $0.lowercased() == "upgrade" }
        if !codings.isEmpty, codings != ["chunked"] {
            refuse(context, "a transfer-encoding other than chunked")
            return
        }
        // The one body taken: a WHEP offer (SDP), sized up front, at most 64 KiB.
        let offer = head.method == .POST && head.uri.hasPrefix("/whep/") && codings.isEmpty
        if offer, length > 65536 {
            refuse(context, "a WHEP offer is at most 65536 bytes; this one is \(length)", status: .payloadTooLarge)
            return
        }
        if !offer, !codings.isEmpty || length > 0 {
            refuse(context, "camflow's web server takes no request body")
            return
        }
        if webSocket, !upgrading {
            refuse(context, "a WebSocket upgrade needs 'Connection: Upgrade'")
            return
        }
        // Hummingbird keeps a connection open unless the request says close: an HTTP/1.0
        // request without keep-alive (and a CONNECT, whose rest is not HTTP) would then hold
        // the connection, and its client waiting for the end, until the idle timeout.
        if !head.isKeepAlive || head.method == .CONNECT {
            head.headers.replaceOrAdd(name: "connection", value: "close")
        }
        // A request without valid credentials gets its 401 (or 429) and then the connection ends:
        // a client that never authenticates could otherwise hold a place for ever by sending a
        // request within each idle timeout.
        if !webSocket, let credentials = connection.limits.credentials,
           !credentials.accepts(head.headers.first(name: "authorization")) {
            head.headers.replaceOrAdd(name: "connection", value: "close")
        }
        context.fireChannelRead(wrapInboundOut(.head(head)))
        if webSocket { context.pipeline.syncOperations.removeHandler(context: context, promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parseError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        if headsSeen == 0 {
            refuse(context, "the request head does not parse (\(parseError))")
        } else {
            // Hummingbird answers it after the response in progress.
            refused = true
            context.fireErrorCaught(error)
        }
    }

    private func refuse(_ context: ChannelHandlerContext, _ why: String, status: HTTPResponseStatus = .badRequest) {
        guard !refused else { return }
        refused = true
        connection.countRefused("malformed-request")
        guard headsSeen <= 1 else {
            // A response to an earlier request may be on its way: Hummingbird writes the 400
            // once it is done, and closes.
            context.fireErrorCaught(HTTPParserError.invalidConstant)
            return
        }
        let body = ByteBuffer(string: "\(status.code): \(why)\n")
        let head = HTTPResponseHead(version: .http1_1, status: status, headers: [
            "Connection": "close", "Content-Type": "text/plain; charset=utf-8", "Content-Length": "\(body.readableBytes)",
        ])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}

/// A server child channel that puts a ``ConnectionGuard`` first, then
/// sets up the channel it wraps (HTTP/1 with the WebSocket upgrade), with a
/// ``RequestHeadGuard`` after its request decoder.
struct GuardedChildChannel<Base: ServerChildChannel>: ServerChildChannel {
    /// The wrapped channel's value and the connection's peer.
    struct Value: ServerChildChannelValue {
        let base: Base.Value
        let peer: ConnectionPeer
        var channel: any Channel { base.channel }
    }

    let base: Base
    let limits: ConnectionLimits

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let peer = ConnectionPeer(group: PeerGroup.of(channel.remoteAddress))
        let connection = ConnectionGuard(limits: limits, peer: peer)
        do {
            try channel.pipeline.syncOperations.addHandler(connection)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return base.setup(channel: channel, logger: logger).assumeIsolated().flatMapThrowing { value in
            let pipeline = channel.pipeline.syncOperations
            let decoder = try pipeline.context(handlerType: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try pipeline.addHandler(RequestHeadGuard(connection: connection), position: .after(decoder.handler))
            return Value(base: value, peer: peer)
        }.nonisolated()
    }

    func handle(value: Value, logger: Logger) async {
        // Hummingbird logs at error level every connection that ends before its upgrade is
        // decided, which the guard does to hostile clients by the hundred: camflow counts and
        // logs refusals itself, so per-connection logs from below stay quiet.
        var quiet = logger
        quiet.logLevel = .critical
        await ConnectionPeer.$current.withValue(value.peer) {
            await base.handle(value: value.base, logger: quiet)
        }
    }
}
