import InstarProtocol
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Receives an INSTAR camera's alarm-server requests (`GET …?active=N&object=M`)
/// and hands each alarm on. Every connection answers one request and
/// closes, and is closed 10 s after it was accepted whatever it sends (a
/// peer trickling bytes gains nothing); at most 64 are open at once, 8 from
/// one address, so a flood from one host leaves room for the camera.
final class AlarmServer: Sendable {
    static let maxConnections = 64
    static let maxConnectionsPerAddress = 8
    static let requestDeadline = TimeAmount.seconds(10)

    private let channel: any Channel
    /// Where it listens, with the port the system chose for port 0.
    var address: BindAddressDescription { BindAddressDescription(channel.localAddress) }

    private init(channel: any Channel) { self.channel = channel }

    /// Binds and starts serving; `deliver` gets every alarm, on an event loop thread.
    static func start(host: String, port: Int, credentials: BasicCredentials?, deadline requestDeadline: TimeAmount = requestDeadline,
                      deliver: @escaping @Sendable (CameraAlarm, String) -> Void) async throws -> AlarmServer {
        let open = Mutex<(total: Int, byAddress: [String: Int])>((0, [:]))
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let address = channel.remoteAddress?.ipAddress ?? "?"
                let admitted = open.withLock { open in
                    guard open.total < maxConnections, open.byAddress[address, default: 0] < maxConnectionsPerAddress else { return false }
                    open.total += 1
                    open.byAddress[address, default: 0] += 1
                    return true
                }
                guard admitted else { return channel.close() }
                let deadline = channel.eventLoop.scheduleTask(in: requestDeadline) { channel.close(promise: nil) }
                channel.closeFuture.whenComplete { _ in
                    deadline.cancel()
                    open.withLock { open in
                        open.total -= 1
                        open.byAddress[address, default: 1] -= 1
                        if open.byAddress[address] == 0 { open.byAddress[address] = nil }
                    }
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(AlarmRequestHandler(credentials: credentials, deliver: deliver))
                }
            }
            .bind(host: host, port: port).get()
        return AlarmServer(channel: channel)
    }

    func stop() async {
        try? await channel.close()
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
    private var head: HTTPRequestHead?

    init(credentials: BasicCredentials?, deliver: @escaping @Sendable (CameraAlarm, String) -> Void) {
        self.credentials = credentials
        self.deliver = deliver
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break  // an alarm is in the query; a body is read and dropped
        case .end:
            guard let head else { return context.close(promise: nil) }
            self.head = nil
            let (status, text) = answer(head, peer: context.remoteAddress?.ipAddress ?? "?")
            respond(context, status, text)
        }
    }

    private func answer(_ head: HTTPRequestHead, peer: String) -> (HTTPResponseStatus, String) {
        guard head.method == .GET || head.method == .POST else { return (.methodNotAllowed, "GET only\n") }
        if let credentials {
            let offered = head.headers.first(name: "Authorization").flatMap(BasicCredentials.init(authorization:))
            guard let offered, Self.equalInConstantTime(offered, credentials) else { return (.unauthorized, "credentials needed\n") }
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
