import Foundation
import InstarProtocol
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket

/// How the camera is told who we are.
public enum CameraAuthentication: String, Sendable, CaseIterable {
    /// HTTP Basic on the upgrade request (the camera's own web client does this).
    case basic
    /// `?user=&pwd=` on the path, for firmware that takes it.
    case query
}

/// Why a connection to a camera failed.
enum CameraConnectionError: Error, CustomStringConvertible {
    /// The camera answered the upgrade with 401 or 403.
    case authenticationFailed(status: Int)
    /// The camera answered the upgrade with another status.
    case refused(status: Int, reason: String)
    /// TCP connect, TLS or the handshake failed.
    case transport(String)

    var description: String {
        switch self {
        case .authenticationFailed(let status): "the camera refused the credentials (HTTP \(status))"
        case .refused(let status, let reason): "the camera refused the WebSocket upgrade (HTTP \(status) \(reason))"
        case .transport(let message): message
        }
    }
}

/// A WebSocket connection to a camera, built on SwiftNIO directly: the
/// upgrade response's status tells a wrong password (401) from other
/// refusals, and reads follow demand, so a slow pipeline slows the camera
/// through TCP flow control.
struct CameraConnection {
    typealias WebSocket = NIOAsyncChannel<WebSocketFrame, WebSocketFrame>

    private enum UpgradeOutcome: Sendable {
        case upgraded(WebSocket)
        case refused(EventLoopFuture<HTTPResponseHead>)
    }

    struct Settings: Sendable {
        var endpoint: CameraEndpoint
        var username: String?
        var password: String?
        var authentication: CameraAuthentication = .basic
        var tls: TLSConfiguration?
        var maxMessageSize: Int
        var connectTimeout: TimeAmount = .seconds(10)
    }

    /// Connects and upgrades; returns the WebSocket channel. On every other
    /// outcome the connection is closed before this returns: a server that
    /// answers 101 with a wrong `Sec-WebSocket-Accept` and streams on must
    /// not leave a socket whose bytes pile up in the HTTP decoder.
    static func open(_ settings: Settings) async throws -> WebSocket {
        let endpoint = settings.endpoint
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: endpoint.hostHeader)
        var uri = endpoint.path
        if let username = settings.username {
            switch settings.authentication {
            case .basic:
                let credentials = BasicCredentials(username: username, password: settings.password ?? "")
                headers.add(name: "Authorization", value: credentials.authorization)
            case .query:
                // On the wire only: messages print `endpoint`, which holds no credentials.
                uri = QueryCredentials(username: username, password: settings.password ?? "").appended(to: endpoint.path)
            }
        }
        let request = HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: headers)
        let sslContext: NIOSSLContext?
        do {
            sslContext = try settings.tls.map { try NIOSSLContext(configuration: $0) }
        } catch {
            throw CameraConnectionError.transport("TLS setup failed: \(error)")
        }
        let host = endpoint.host
        let serverName = host.isIPAddress ? nil : host
        let maxMessageSize = settings.maxMessageSize

        let outcome: UpgradeOutcome
        let opened = NIOLockedValueBox<(any Channel)?>(nil)
        // Whatever does not hand the socket over closes it.
        var handedOver = false
        defer { if !handedOver { opened.withLockedValue { $0 }?.close(promise: nil) } }
        do {
            let upgrade = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(settings.connectTimeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connect(host: host, port: endpoint.port) { channel in
                    opened.withLockedValue { $0 = channel }
                    return channel.eventLoop.makeCompletedFuture {
                        if let sslContext {
                            let handler = try NIOSSLClientHandler(context: sslContext, serverHostname: serverName)
                            try channel.pipeline.syncOperations.addHandler(handler)
                        }
                        let upgrader = NIOTypedWebSocketClientUpgrader<UpgradeOutcome>(
                            maxFrameSize: maxMessageSize,
                            upgradePipelineHandler: { channel, _ in
                                channel.eventLoop.makeCompletedFuture {
                                    try channel.pipeline.syncOperations.addHandler(NIOWebSocketFrameAggregator(
                                        minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 1024,
                                        maxAccumulatedFrameSize: maxMessageSize))
                                    // A small inbound buffer: demand, not the socket, sets the pace.
                                    let socket = try WebSocket(
                                        wrappingChannelSynchronously: channel,
                                        configuration: .init(backPressureStrategy: .init(lowWatermark: 1, highWatermark: 2)))
                                    return UpgradeOutcome.upgraded(socket)
                                }
                            })
                        var configuration = NIOUpgradableHTTPClientPipelineConfiguration(
                            upgradeConfiguration: .init(
                                upgradeRequestHead: request, upgraders: [upgrader],
                                notUpgradingCompletionHandler: { channel in
                                    channel.eventLoop.makeCompletedFuture {
                                        let capture = ResponseHeadCapture(promise: channel.eventLoop.makePromise())
                                        try channel.pipeline.syncOperations.addHandler(capture)
                                        return UpgradeOutcome.refused(capture.promise.futureResult)
                                    }
                                }))
                        // Frames that came in the same read as the 101 belong to the WebSocket.
                        configuration.leftOverBytesStrategy = .forwardBytes
                        let result = try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(
                            configuration: configuration)
                        // A denied upgrade (wrong accept key, no Upgrade header, a parse error) leaves
                        // the HTTP decoder in place, buffering whatever follows: close at once, on the loop.
                        result.whenFailure { _ in channel.close(promise: nil) }
                        return result
                    }
                }
            // The handshake must finish within the connect timeout, and a stop must not wait for it.
            let channel = opened.withLockedValue { $0 }
            let deadline = channel?.eventLoop.scheduleTask(in: settings.connectTimeout) {
                channel?.close(promise: nil)
            }
            defer { deadline?.cancel() }
            outcome = try await withTaskCancellationHandler {
                try await upgrade.get()
            } onCancel: {
                channel?.close(promise: nil)
            }
        } catch let error as CameraConnectionError {
            throw error
        } catch {
            throw CameraConnectionError.transport("cannot connect to \(endpoint): \(error)")
        }
        switch outcome {
        case .upgraded(let socket):
            handedOver = true
            return socket
        case .refused(let head):
            let channel = opened.withLockedValue { $0 }
            let response = try? await withTaskCancellationHandler {
                try await head.get()
            } onCancel: {
                channel?.close(promise: nil)
            }
            let status = Int(response?.status.code ?? 0)
            if status == 401 || status == 403 { throw CameraConnectionError.authenticationFailed(status: status) }
            throw CameraConnectionError.refused(status: status, reason: response?.status.reasonPhrase ?? "no response")
        }
    }
}

/// Takes the HTTP response head of a refused upgrade, then closes.
/// Lives on the channel's event loop only.
private final class ResponseHeadCapture: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    let promise: EventLoopPromise<HTTPResponseHead>
    private var completed = false

    init(promise: EventLoopPromise<HTTPResponseHead>) {
        self.promise = promise
    }

    private func complete(_ result: Result<HTTPResponseHead, any Error>) {
        guard !completed else { return }
        completed = true
        promise.completeWith(result)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) {
            complete(.success(head))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        complete(.failure(CameraConnectionError.transport("the camera closed the connection without a response")))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        complete(.failure(error))
        context.close(promise: nil)
    }
}

extension String {
    /// Whether this is an IPv4 or IPv6 literal (no SNI for those).
    var isIPAddress: Bool {
        (try? SocketAddress(ipAddress: self, port: 0)) != nil
    }
}
