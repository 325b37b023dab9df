import Camflow
import InstarProtocol
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Receives an INSTAR camera's alarm-server requests (`GET …?active=N&object=M`)
/// and hands each alarm on. Every connection answers one request and
/// closes, and is closed 10 s after it was accepted whatever it sends (a
/// peer trickling bytes gains nothing) or once it sent 16 KiB (a huge head
/// or an endless body); at most 64 are open at once, 8 from one address (an
/// IPv6 /64, which one host holds whole), so a flood from one host leaves
/// room for the camera.
final class AlarmServer: Sendable {
    static let maxConnections = 64
    static let maxConnectionsPerAddress = 8
    static let requestDeadline = TimeAmount.seconds(10)
    /// A camera's request is a few hundred bytes.
    static let maxBytesPerConnection = 16 << 10
    /// Wrong credentials from one address (or /64) within `authFailureWindow`
    /// before its connections are closed unanswered until the window ends:
    /// guessing the password is ten tries a minute, not thousands a second.
    static let maxAuthFailures = 10
    static let authFailureWindow = TimeAmount.seconds(60)

    private let channel: any Channel
    private let open: OpenConnections
    /// Where it listens, with the port the system chose for port 0.
    var address: BindAddressDescription { BindAddressDescription(channel.localAddress) }
    /// Connections accepted and not yet closed (closed: every handler has seen its end).
    var openConnections: Int { open.counts.withLock { $0.total } }

    private init(channel: any Channel, open: OpenConnections) {
        self.channel = channel
        self.open = open
    }

    /// The connections open, in all and per address group.
    private final class OpenConnections: Sendable {
        let counts = Mutex<(total: Int, byAddress: [String: Int])>((0, [:]))
    }

    /// Binds and starts serving; `deliver` gets every alarm, on an event loop thread.
    static func start(host: String, port: Int, credentials: BasicCredentials?, deadline requestDeadline: TimeAmount = requestDeadline,
                      authFailureWindow: TimeAmount = authFailureWindow,
                      deliver: @escaping @Sendable (CameraAlarm, String) -> Void) async throws -> AlarmServer {
        let connections = OpenConnections()
        let failures = CredentialFailureLimiter(CredentialFailures(
            maxFailures: maxAuthFailures, windowNanoseconds: UInt64(max(authFailureWindow.nanoseconds, 1))))
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let address = peerGroup(channel.remoteAddress)
                guard !failures.isLockedOut(address) else { return channel.close() }
                let admitted = connections.counts.withLock { open in
                    guard open.total < maxConnections, open.byAddress[address, default: 0] < maxConnectionsPerAddress else { return false }
                    open.total += 1
                    open.byAddress[address, default: 0] += 1
                    return true
                }
                guard admitted else { return channel.close() }
                let deadline = channel.eventLoop.scheduleTask(in: requestDeadline) { channel.close(promise: nil) }
                channel.closeFuture.whenComplete { _ in
                    deadline.cancel()
                    connections.counts.withLock { open in
                        open.total -= 1
                        open.byAddress[address, default: 1] -= 1
                        if open.byAddress[address] == 0 { open.byAddress[address] = nil }
                    }
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ReadBudget(bytes: maxBytesPerConnection))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(AlarmRequestHandler(credentials: credentials, deliver: deliver) {
                        _ = failures.note(address)
                    })
                }
            }
            .bind(host: host, port: port).get()
        return AlarmServer(channel: channel, open: connections)
    }

    func stop() async {
        try? await channel.close()
    }

    /// What the per-address limits count (see ``PeerGroup``).
    static func peerGroup(_ address: SocketAddress?) -> String { PeerGroup.of(address) }
}

/// Closes a connection once it has sent more than `bytes`: the HTTP decoder
/// would take a head of many kilobytes, and a body without end, within the deadline.
private final class ReadBudget: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private var left: Int

    init(bytes: Int) { left = bytes }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard left >= 0 else { return }
        left -= unwrapInboundIn(data).readableBytes
        guard left >= 0 else { return context.close(promise: nil) }
        context.fireChannelRead(data)
    }
}

/// `host:port` of a bound socket, for the log.
struct BindAddressDescription: CustomStringConvertible {
    let address: SocketAddress?
    init(_ address: SocketAddress?) { self.address = address }
    var port: Int { address?.port ?? 0 }
    var description: String {
        guard let address, let port = address.port else { return "?" }
        let host = address.ipAddress ?? "?"
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// One alarm-server request: checks the credentials, reads the query, answers.
private final class AlarmRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let credentials: BasicCredentials?
    let deliver: @Sendable (CameraAlarm, String) -> Void
    /// Called when credentials were offered and were wrong.
    let wrongCredentials: @Sendable () -> Void
    private var head: HTTPRequestHead?
    /// One request per connection: what a peer pipelines after it (fifty
    /// alarms in one write) is never answered nor delivered.
    private var answered = false

    init(credentials: BasicCredentials?, deliver: @escaping @Sendable (CameraAlarm, String) -> Void,
         wrongCredentials: @escaping @Sendable () -> Void) {
        self.credentials = credentials
        self.deliver = deliver
        self.wrongCredentials = wrongCredentials
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break  // an alarm is in the query; a body is read and dropped
        case .end:
            guard let head else { return context.close(promise: nil) }
            self.head = nil
            answered = true
            let (status, text) = answer(head, peer: context.remoteAddress?.ipAddress ?? "?")
            respond(context, status, text)
        }
    }

    /// Bytes that are no HTTP: NIO has answered 400 and would keep the
    /// connection (and its slot) until the deadline.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func answer(_ head: HTTPRequestHead, peer: String) -> (HTTPResponseStatus, String) {
        guard head.method == .GET || head.method == .POST else { return (.methodNotAllowed, "GET only\n") }
        if let credentials {
            let offered = head.headers.first(name: "Authorization").flatMap(BasicCredentials.init(authorization:))
            guard let offered, Self.equalInConstantTime(offered, credentials) else {
                if head.headers.contains(name: "Authorization") { wrongCredentials() }
                return (.unauthorized, "credentials needed\n")
            }
        }
        let query = head.uri.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
        guard let alarm = CameraAlarm.fromAlarmServer(query: query) else {
            return (.badRequest, "expected ?active=N (1-10, 99, or 0), optionally &object=M\n")
        }
        deliver(alarm, peer)
        return (.ok, "ok\n")
    }

    private func respond(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ text: String) {
        var headers = HTTPHeaders([("Content-Type", "text/plain"), ("Content-Length", "\(text.utf8.count)"), ("Connection", "close")])
        if status == .unauthorized { headers.add(name: "WWW-Authenticate", value: BasicCredentials.challenge(realm: "camflow alarms")) }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }

    /// Compares without stopping at the first difference, so timing tells a guesser nothing.
    static func equalInConstantTime(_ offered: BasicCredentials, _ expected: BasicCredentials) -> Bool {
        func same(_ a: String, _ b: String) -> Bool {
            let a = Array(a.utf8), b = Array(b.utf8)
            var difference = UInt8(a.count == b.count ? 0 : 1)
            for index in 0..<max(a.count, b.count) {
                difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
            }
            return difference == 0
        }
        let user = same(offered.username, expected.username)
        let password = same(offered.password, expected.password)
        return user && password
    }
}
