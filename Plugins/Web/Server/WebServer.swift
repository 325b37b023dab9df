import Camflow
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import HummingbirdWebSocket
import Logging
import ServiceLifecycle
import NIOCore
import InstarProtocol
import NIOSSL

/// What the web sink serves, on one port: the camera protocol on `/ws`,
/// the viewer, the dashboard, `/api/stats`, `/metrics`, `/healthz` and
/// `/readyz`, all behind HTTP Basic when credentials are set.
struct WebServer: Sendable {
    /// Wrong credentials per peer: ten a minute, then 429 until the minute ends (HTTP and `/ws` alike).
    let credentialFailures: CredentialFailureLimiter
    let settings: WebSettings
    let hub: RestreamHub
    let hls: HLSStore?
    let pipeline: PipelineView
    let nodeID: String
    let logger: Logger
    /// The pipeline's clock, for viewers' idle timeouts, the credential
    /// lock-out's minute, snapshot timeouts and rate-limited log lines.
    let clock: any PipelineClock
    /// WebRTC playback (WHEP), when the sink serves it.
    let whep: WHEPRoutes?

    init(settings: WebSettings, hub: RestreamHub, hls: HLSStore?, pipeline: PipelineView, nodeID: String,
         logger: Logger, clock: any PipelineClock = SystemClock(), whep: WHEPRoutes? = nil) {
        self.whep = whep
        self.settings = settings
        self.hub = hub
        self.hls = hls
        self.pipeline = pipeline
        self.nodeID = nodeID
        self.logger = logger
        self.clock = clock
        credentialFailures = CredentialFailureLimiter(clock: clock)
    }

    /// The Hummingbird application; run it as a service. `onListening` gets
    /// the bound address.
    func application(onListening: @escaping @Sendable (SocketAddress) async -> Void) throws -> some Service {
        let session = ViewerSession(hub: hub, idleTimeout: settings.idleTimeout, logger: logger, clock: clock)
        let credentials = settings.credentials
        let viewerLogger = logger
        // The upgrade is checked here, not in the router: NIO drops the
        // request of a declined upgrade, so a router's 401 would reach the
        // client as 400. The refusal is written before declining.
        let allowedOrigins = settings.allowedOrigins
        let credentialFailures = self.credentialFailures
        let limits = ConnectionLimits(maxConnections: settings.maxConnections, maxPerClient: settings.maxConnectionsPerClient,
                                      headerTimeout: .nanoseconds(settings.headerTimeout.nanoseconds),
                                      writeTimeout: .nanoseconds(settings.writeTimeout.nanoseconds),
                                      credentials: settings.credentials, nodeID: nodeID)
        let refusedOrigins = RefusedOrigins(clock: clock)
        let shouldUpgrade: @Sendable (HTTPRequest, any Channel, Logger) async throws
            -> ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>> = { request, channel, _ in
            guard let stream = Self.webSocketStream(request.path ?? "") else {
                HTTPRefusal.write(.notFound, realm: WebCredentials.realm, on: channel)
                return .dontUpgrade
            }
            // Browsers resend cached Basic credentials to any page's WebSocket: only our own
            // pages (or listed origins) may open one. Clients that send no Origin are not browsers.
            if let origin = request.headerFields[.origin],
               !Self.originAllowed(origin, host: request.authority, allowed: allowedOrigins) {
                refusedOrigins.log(origin, to: viewerLogger)
                limits.countRefused("origin")
                HTTPRefusal.write(.forbidden, realm: WebCredentials.realm, on: channel)
                return .dontUpgrade
            }
            if let credentials {
                let group = PeerGroup.of(channel.remoteAddress)
                if credentialFailures.isLockedOut(group) {
                    limits.countRefused("credentials-locked-out")
                    HTTPRefusal.write(.tooManyRequests, realm: WebCredentials.realm, on: channel)
                    return .dontUpgrade
                }
                if !credentials.accepts(request.headerFields[.authorization]) {
                    if request.headerFields[.authorization] != nil {
                        Self.noteCredentialFailure(group, credentialFailures, viewerLogger)
                    }
                    limits.countRefused("credentials")
                    HTTPRefusal.write(.unauthorized, realm: WebCredentials.realm, on: channel)
                    return .dontUpgrade
                }
            }
            // A small send buffer: a viewer that falls behind shows up in its
            // queue (and loses whole GOPs) within a fraction of a second, not
            // after megabytes of kernel buffer and seconds of delay.
            _ = channel.setOption(ChannelOptions.socketOption(.so_sndbuf), value: Self.viewerSendBuffer)
            let remote = channel.remoteAddress.map(Self.describe) ?? "unknown"
            return .upgrade([:]) { inbound, outbound, _ in
                await session.serve(inbound: inbound, outbound: outbound, stream: stream, remote: remote, eventLoop: channel.eventLoop)
            }
        }
        let configuration = HTTP1WebSocketUpgradeChannel.Configuration(
            http1: .init(idleTimeout: .nanoseconds(settings.idleTimeout.nanoseconds)),
            ws: .init(maxFrameSize: 1 << 16, autoPing: .disabled))
        // The guard goes first on every connection: limits and the header timeout hold before any HTTP is parsed.
        var server = HTTPServerBuilder { responder in
            GuardedChildChannel(
                base: HTTP1WebSocketUpgradeChannel(responder: responder, configuration: configuration, shouldUpgrade: shouldUpgrade),
                limits: limits)
        }
        if let tls = settings.tls {
            server = try .tls(server, tlsConfiguration: tls)
        }
        return Application(
            router: makeRouter(),
            server: server,
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "camflow"),
            onServerRunning: { channel in
                if let address = channel.localAddress { await onListening(address) }
            },
            logger: logger)
    }

    static let viewerSendBuffer: SocketOptionValue = 256 * 1024

    /// Counts a wrong password of `group`; logs its first of a window and its lock-out, not every guess.
    static func noteCredentialFailure(_ group: String, _ failures: CredentialFailureLimiter, _ logger: Logger) {
        switch failures.note(group) {
        case .first:
            logger.notice("refused wrong credentials from \(UntrustedText.printable(group, limit: 64))")
        case .lockedOut:
            logger.warning("\(UntrustedText.printable(group, limit: 64)) sent wrong credentials \(CredentialFailures().maxFailures) times within a minute: refused (429) until the minute ends")
        case .counted:
            break
        }
    }

    /// Whether a browser page from `origin` may open a WebSocket here: the
    /// page came from this server (same host and port), or the origin is listed.
    static func originAllowed(_ origin: String, host: String?, allowed: [String]) -> Bool {
        let trimmed = origin.hasSuffix("/") ? String(origin.dropLast()) : origin
        if allowed.contains(trimmed) || allowed.contains("*") { return true }
        // A page's origin is http(s) (or "null"); ws:// and wss:// come from WebSocket
        // libraries that name the socket's own URL, not from a page a browser shows.
        if trimmed.hasPrefix("ws://") || trimmed.hasPrefix("wss://") { return true }
        guard let host, let scheme = trimmed.range(of: "://") else { return false }
        let originHost = trimmed[scheme.upperBound...]
        if originHost == host { return true }
        // A default port may be left out on either side.
        let defaultPort = trimmed.hasPrefix("https://") ? ":443" : ":80"
        return originHost + defaultPort == host || originHost == host + defaultPort
    }

    /// `/ws` → the default stream (""), `/ws/NAME` → NAME; nil for other paths.
    static func webSocketStream(_ path: String) -> String?? {
        let plain = path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path
        if plain == "/ws" || plain == "/ws/" { return .some(nil) }
        guard plain.hasPrefix("/ws/") else { return nil }
        let name = String(plain.dropFirst(4))
        return name.removingPercentEncoding.map { .some($0) } ?? nil
    }

    static func describe(_ address: SocketAddress) -> String {
        switch address {
        case .v4, .v6: "\(address.ipAddress ?? "?"):\(address.port ?? 0)"
        default: address.description
        }
    }

    private func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        if let credentials = settings.credentials {
            router.add(middleware: BasicAuthMiddleware(credentials: credentials, failures: credentialFailures, logger: logger,
                                                       whep: whep))
        }
        router.get("/") { _, _ in Self.asset(WebAssets.dashboard, "text/html; charset=utf-8") }
        router.get("/viewer") { _, _ in Self.asset(WebAssets.viewer, "text/html; charset=utf-8") }
        router.get("/assets/:file") { _, context in
            guard let name = context.parameters.get("file"), let asset = WebAssets.files[name] else {
                return Response(status: .notFound)
            }
            return Self.asset(asset.bytes, asset.contentType)
        }
        router.get("/recordings") { _, _ in Self.asset(WebAssets.recordings, "text/html; charset=utf-8") }
        if let hls {
            HLSRoutes(store: hls).add(to: router)
            let snapshots = SnapshotService(store: hls, ffmpeg: settings.ffmpeg, maxDecodes: settings.snapshotDecodes, clock: clock)
            router.get("/snapshot/:file") { request, context in
                try await Self.snapshot(request, context, snapshots)
            }
        }
        whep?.add(to: router)
        RecordingRoutes(roots: settings.recordings, logger: logger, maxGOPBytes: settings.gopCache).add(to: router)
        router.get("/healthz") { _, _ in Self.text("ok\n") }
        router.get("/readyz") { _, _ in
            let waiting = pipeline.sourcesNotReady(in: pipeline.snapshot())
            return waiting.isEmpty
                ? Self.text("ready\n")
                : Self.text("not ready: waiting for \(waiting.joined(separator: ", "))\n", status: .serviceUnavailable)
        }
        router.get("/metrics") { _, _ in
            guard let text = pipeline.metricsText() else {
                return Self.text("no metrics backend: the program running this pipeline bootstrapped none\n",
                                 status: .notFound)
            }
            return Self.text(text, contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
        router.get("/api/stats") { _, _ in
            let body = try StatusReport(pipeline: pipeline, webNode: nodeID, restream: hub.snapshot(),
                                    hlsWaiting: hls?.waitingTotal).json()
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            headers[.cacheControl] = "no-store"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
        return router
    }

    /// `/snapshot/NAME.jpg?width=W`.
    private static func snapshot(_ request: Request, _ context: BasicRequestContext, _ snapshots: SnapshotService) async throws -> Response {
        guard let file = context.parameters.get("file"), file.hasSuffix(".jpg"),
              let stream = String(file.dropLast(4)).removingPercentEncoding else {
            return text("snapshots are /snapshot/STREAM.jpg\n", status: .notFound)
        }
        var width: Int?
        if let text = request.uri.queryParameters["width"] {
            guard let value = Int(text), (16...7680).contains(value) else {
                return Self.text("width must be a whole number of pixels from 16 to 7680\n", status: .badRequest)
            }
            width = value
        }
        do {
            var headers = HTTPFields()
            headers[.contentType] = "image/jpeg"
            headers[.cacheControl] = "no-cache"
            return Response(status: .ok, headers: headers,
                            body: .init(byteBuffer: try await snapshots.jpeg(stream: stream, width: width)))
        } catch SnapshotService.Failure.noKeyframe {
            return text("no keyframe of stream '\(stream)' yet\n", status: .serviceUnavailable)
        } catch SnapshotService.Failure.busy {
            var response = text("busy decoding other snapshots; try again\n", status: .serviceUnavailable)
            response.headers[.retryAfter] = "1"
            return response
        } catch SnapshotService.Failure.decodeFailed(let why) {
            return text("cannot decode the keyframe of '\(stream)': \(why)\n", status: .internalServerError)
        }
    }

    private static func asset(_ bytes: [UInt8], _ contentType: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    private static func text(_ text: String, status: HTTPResponse.Status = .ok,
                             contentType: String = "text/plain; charset=utf-8") -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

/// 401 with a Basic challenge for any request without the credentials;
/// 429 for a peer that sent wrong ones too often (see ``CredentialFailures``).
struct BasicAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let credentials: WebCredentials
    let failures: CredentialFailureLimiter
    let logger: Logger
    /// WHEP's refusals carry its CORS headers, so a page of an allowed origin sees the 401, not a network error.
    var whep: WHEPRoutes?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // A CORS preflight carries no credentials; WHEP's answers only which origins may ask.
        if request.method == .options, request.uri.path.hasPrefix("/whep/") { return try await next(request, context) }
        if let whep, request.uri.path.hasPrefix("/whep/") {
            let response = try await refusal(request, context, next)
            return whep.cors(request, response)
        }
        return try await refusal(request, context, next)
    }

    private func refusal(_ request: Request, _ context: Context,
                         _ next: (Request, Context) async throws -> Response) async throws -> Response {
        let group = ConnectionPeer.current?.group ?? "?"
        if failures.isLockedOut(group) {
            var headers = HTTPFields()
            headers[.retryAfter] = "60"
            headers[.contentType] = "text/plain; charset=utf-8"
            return Response(status: .tooManyRequests, headers: headers,
                            body: .init(byteBuffer: ByteBuffer(string: "429: too many wrong credentials from this address; try again in a minute\n")))
        }
        guard credentials.accepts(request.headers[.authorization]) else {
            // A request without any credentials is how a browser asks for the challenge: not a guess.
            if request.headers[.authorization] != nil {
                WebServer.noteCredentialFailure(group, failures, logger)
            }
            var headers = HTTPFields()
            headers[.wwwAuthenticate] = WebCredentials.challenge
            headers[.contentType] = "text/plain; charset=utf-8"
            return Response(status: .unauthorized, headers: headers,
                            body: .init(byteBuffer: ByteBuffer(string: "401: this camflow needs a username and password\n")))
        }
        return try await next(request, context)
    }
}
