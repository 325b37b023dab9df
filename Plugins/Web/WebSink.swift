import Camflow
import Logging
import Metrics
import ServiceLifecycle
import Synchronization
import NIOCore
import NIOSSL
import WebRTC

/// The web sink's checked options.
struct WebSettings: Sendable {
    var host: String
    var port: Int
    var credentials: WebCredentials?
    var tls: TLSConfiguration?
    var viewerQueue: Int
    var gopCache: Int
    var idleTimeout: Duration
    var drainTimeout: Duration
    /// Streams cached for viewers at most; each holds up to `gopCache` bytes.
    var maxStreams = 16
    /// How long a new connection may take to send its request headers.
    var headerTimeout: Duration = .seconds(10)
    /// How long a response may wait with none of its bytes taken before its connection is closed.
    var writeTimeout: Duration = .seconds(30)
    var maxConnections = 256
    var maxConnectionsPerClient = 32
    /// Origins (`https://host:port`) besides this server's own whose pages may open a WebSocket.
    var allowedOrigins: [String] = []
    /// LL-HLS, when on.
    var hls: HLSTimeline.Configuration? = HLSTimeline.Configuration()
    /// Roots of file-record and event-record sinks served under /recordings.
    var recordings: [String] = []
    /// The program that decodes snapshots.
    var ffmpeg = "ffmpeg"
    /// Snapshot decodes at once, all streams together.
    var snapshotDecodes = 2
    /// The UDP port of WebRTC (WHEP) playback; 0 picks one.
    var webrtcPort = 8189
    /// The address (HOST or HOST:PORT) WHEP answers offer as the candidate, for viewers behind NAT.
    var webrtcPublicAddress: String?
    var webrtcMaxSessions = 32
}

/// `web`: restreams init segments and fragments to browsers and camera
/// clients over the camera's own WebSocket protocol, and serves a viewer,
/// a dashboard, `/api/stats`, `/metrics`, `/healthz` and `/readyz`.
struct WebSink: Node {
    static let type = NodeType(
        name: "web",
        summary: "Serves streams over the camera's WebSocket protocol and LL-HLS, with a viewer, dashboard, recordings, snapshots and /metrics.",
        details: """
            One camera connection, any number of viewers. '/ws' (the first stream) and '/ws/NAME' speak \
            the INSTAR camera's protocol: 'livestream' or 'livestream/<11|12|13>' starts the stream with \
            the init segment and then fragments from the latest keyframe, 'stop' stops it, \
            'keep-alive' is accepted, other text is answered 'error: ...', and a client silent for \
            'idle-timeout' is closed. Each viewer has its own queue of 'viewer-queue' bytes: a viewer \
            that falls behind loses whole GOPs (its video stays decodable) and never slows the \
            pipeline or other viewers. '/viewer' is the camera's web client rebuilt (MSE, codec \
            from the init segment), '/' a dashboard with a live tile per stream and the pipeline \
            graph with rates, queue fill and drops; '/api/stats' (JSON), '/metrics' (Prometheus), \
            '/healthz', '/readyz' (ready when every source runs and every camera is connected). \
            '/hls/NAME/index.m3u8' is LL-HLS: segments from keyframe to keyframe, parts of whole frames \
            of at most 'hls-part', blocking reloads and preload hints, 'hls-segments' segments in memory. \
            With 'recordings', '/recordings' shows a timeline per stream and day, '/api/recordings' lists \
            files and gaps, and '/api/recordings/NAME/clip.mp4?start=&duration=' cuts one MP4 from the \
            keyframe at or before the start, across files. '/snapshot/NAME.jpg' is the latest keyframe as \
            JPEG (ffmpeg, once per keyframe). 'POST /whep/NAME' answers a WHEP offer: WebRTC playback (H.264 \
            without B-frames, video only) over the UDP port 'webrtc-port'. With 'username' and 'password' \
            everything answers 401 without them.
            """,
        options: [
            OptionSpec("bind", .string, default: "127.0.0.1:8080",
                       "Address to listen on: HOST:PORT, [V6]:PORT or :PORT for every interface; port 0 picks one."),
            OptionSpec("username", .string, "HTTP Basic user required for everything served (with 'password')."),
            OptionSpec("password", .secret, "HTTP Basic password; never printed."),
            OptionSpec("tls-cert", .string, "PEM certificate chain file: serve https and wss (with 'tls-key')."),
            OptionSpec("tls-key", .string, "PEM private key file for 'tls-cert'."),
            OptionSpec("viewer-queue", .size, default: "8MiB", min: "1",
                       "Bytes queued per viewer before it loses whole GOPs; at least one GOP."),
            OptionSpec("gop-cache", .size, default: "16MiB", min: "1",
                       "Bytes of the current GOP kept per stream so a viewer can start at the latest keyframe."),
            OptionSpec("idle-timeout", .duration, default: "60s", above: "0s",
                       "Close a viewer that sent nothing (not even keep-alive) for this long, as the camera does."),
            OptionSpec("drain-timeout", .duration, default: "2s",
                       "At the end of the stream, how long viewers may still take what is queued for them."),
            .maxStreams(default: 16),
            OptionSpec("header-timeout", .duration, default: "10s", above: "0s",
                       "Close a connection that has not sent its request headers (a TLS handshake included) within this."),
            OptionSpec("write-timeout", .duration, default: "30s", above: "0s",
                       "Close a connection whose client has taken none of a response's bytes (a clip, a segment, a viewer's stream) for this long."),
            OptionSpec("max-connections", .integer, default: "256", min: "1", "Connections served at once; more are closed at once and counted."),
            OptionSpec("max-connections-per-client", .integer, default: "32", min: "1", "Connections at once from one client address."),
            OptionSpec("allowed-origins", .list(.string),
                       "Origins (such as https://nvr.example:8443) whose pages may open /ws besides this server's own; '*' for any."),
            OptionSpec("hls", .bool, default: "true", "Serve LL-HLS at /hls/STREAM/index.m3u8 (parts cut from the fragments, no re-encoding)."),
            OptionSpec("hls-part", .duration, default: "500ms", min: "100ms", max: "10s", "Longest LL-HLS part (PART-TARGET): frames are grouped up to this."),
            OptionSpec("hls-segments", .integer, default: "6", min: "2", max: "100",
                       "Complete LL-HLS segments (each a keyframe onwards) kept per stream, besides the one being filled."),
            OptionSpec("recordings", .list(.string),
                       "Roots of file-record or event-record sinks (the directories holding index.jsonl) to list, play and cut at /recordings."),
            OptionSpec("ffmpeg", .string, default: "ffmpeg", "The program that decodes /snapshot/STREAM.jpg from the latest keyframe."),
            OptionSpec("snapshot-decodes", .integer, default: "2", min: "1", max: "16", "Snapshot decodes (ffmpeg processes) at once."),
            OptionSpec("webrtc-port", .integer, default: "8189", min: "0", max: "65535",
                       "UDP port of WebRTC playback (POST a WHEP offer to /whep/STREAM): ICE-lite, DTLS-SRTP, one port for every viewer; 0 picks one. A port that cannot be bound leaves WHEP answering 503, the rest runs."),
            OptionSpec("webrtc-public-address", .string,
                       "IP address (or IP:PORT, a forwarded UDP port) WHEP answers offer to viewers instead of the address the request came to: for viewers behind NAT."),
            OptionSpec("webrtc-max-sessions", .integer, default: "32", min: "1", max: "1024",
                       "WebRTC viewers at once (answered but not yet connected ones included); a quarter of them from one client address."),
        ],
        accepts: [.initSegment, .fragment],
        emits: .nothing,
        make: { options in try WebSink(options) })

    let settings: WebSettings
    let tlsFiles: (cert: String, key: String)?

    init(_ options: NodeOptions) throws {
        let bind = try options.string("bind")
        guard let (host, port) = BindAddress(parsing: bind).map({ ($0.host, $0.port) }) else {
            throw options.error("expected HOST:PORT, [V6]:PORT or :PORT, found '\(bind)'", option: "bind")
        }
        let username = try options.ifSet("username", options.string)
        let password = try options.ifSet("password", options.string)
        if (username == nil) != (password == nil) {
            throw options.error("'username' and 'password' go together", option: username == nil ? "password" : "username")
        }
        let cert = try options.ifSet("tls-cert", options.string)
        let key = try options.ifSet("tls-key", options.string)
        if (cert == nil) != (key == nil) {
            throw options.error("'tls-cert' and 'tls-key' go together", option: cert == nil ? "tls-key" : "tls-cert")
        }
        tlsFiles = cert.flatMap { cert in key.map { (cert, $0) } }
        var settings = WebSettings(
            host: host, port: port,
            credentials: username.flatMap { user in password.map { WebCredentials(username: user, password: $0) } },
            tls: nil, viewerQueue: try options.size("viewer-queue"), gopCache: try options.size("gop-cache"),
            idleTimeout: try options.duration("idle-timeout"), drainTimeout: try options.duration("drain-timeout"))
        settings.maxStreams = try options.maxStreams()
        settings.headerTimeout = try options.duration("header-timeout")
        settings.writeTimeout = try options.duration("write-timeout")
        settings.maxConnections = try options.integer("max-connections")
        settings.maxConnectionsPerClient = try options.integer("max-connections-per-client")
        settings.allowedOrigins = try options.stringList("allowed-origins")
        if try options.bool("hls") {
            settings.hls = HLSTimeline.Configuration(
                partTarget: Double(try options.duration("hls-part").nanoseconds) / 1e9,
                windowSegments: try options.integer("hls-segments"), maxSegmentBytes: settings.gopCache)
        } else {
            settings.hls = nil
        }
        settings.recordings = try options.stringList("recordings")
        settings.ffmpeg = try options.string("ffmpeg")
        settings.snapshotDecodes = try options.integer("snapshot-decodes")
        settings.webrtcPort = try options.integer("webrtc-port")
        settings.webrtcPublicAddress = try options.ifSet("webrtc-public-address", options.string)
        settings.webrtcMaxSessions = try options.integer("webrtc-max-sessions")
        if let address = settings.webrtcPublicAddress {
            let colons = address.filter { $0 == ":" }.count
            let host = address.hasPrefix("[") || colons == 1 ? BindAddress(parsing: address)?.host : address
            guard let host, WHEPRoutes.isIPAddress(host) else {
                throw options.error("expected an IP address, IP:PORT or [IPV6]:PORT, found '\(address)'", option: "webrtc-public-address")
            }
        }
        self.settings = settings
    }

    func run(_ context: NodeContext) async throws {
        var configured = self.settings
        if let tlsFiles {
            configured.tls = try Self.tlsConfiguration(cert: tlsFiles.cert, key: tlsFiles.key, node: context.id)
        }
        let settings = configured
        let clock = context.clock
        let hub = RestreamHub(viewerQueueLimit: settings.viewerQueue, gopCacheLimit: settings.gopCache,
                              maxStreams: settings.maxStreams, node: context.id, clock: clock)
        let hls = settings.hls.map { HLSStore(configuration: $0, maxStreams: settings.maxStreams, clock: clock) }
        let webrtc = await Self.startWebRTC(settings, node: context.id, logger: context.logger, clock: clock)
        var feed = (try? webrtc.get()).map { WebRTCFeed(endpoint: $0, maxStreams: settings.maxStreams) }
        let server = WebServer(settings: settings, hub: hub, hls: hls, pipeline: context.pipeline, nodeID: context.id,
                               logger: context.logger, clock: clock,
                               whep: WHEPRoutes(endpoint: webrtc, bindHost: settings.host, publicAddress: settings.webrtcPublicAddress,
                                                 allowedOrigins: settings.allowedOrigins))
        let scheme = settings.tls == nil ? "http" : "https"
        let socketScheme = settings.tls == nil ? "ws" : "wss"
        let logger = context.logger
        let metrics = ViewerMetrics(node: context.id)
        let serverState = ServerState()
        let application = try server.application { address in
            let host = address.ipAddress.map { $0.contains(":") ? "[\($0)]" : $0 } ?? settings.host
            let authority = "\(host):\(address.port ?? settings.port)"
            let base = "\(scheme)://\(authority)"
            let extras = (settings.hls == nil ? "" : ", HLS: \(base)/hls/STREAM/index.m3u8")
                + (settings.recordings.isEmpty ? "" : ", recordings: \(base)/recordings")
            logger.notice("serving \(base)/ (viewer: \(base)/viewer, camera protocol: \(socketScheme)://\(authority)/ws\(extras))")
            serverState.listening()
        }
        // A service group of its own, so the server stops gracefully when the
        // stream ends (cancelling it would cut connections mid-write).
        let services = ServiceGroup(configuration: .init(services: [application], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await services.run()
                } catch {
                    let failure = WebError(message: "cannot serve on \(settings.host):\(settings.port): \(error)")
                    serverState.failed(failure)
                    throw failure
                }
            }
            // A server that cannot bind fails the node now, not when the stream ends.
            try await serverState.waitUntilListening()
            group.addTask {
                // Counters exported on a fixed beat, not per packet: swift-metrics backends
                // take a lock per update, and viewers count at frame rate.
                var next = clock.now
                while true {
                    // Beats missed (a suspended machine, a test moving the clock) are not made up.
                    next = max(next.advanced(by: .seconds(1)), clock.now)
                    do { try await clock.sleep(until: next) } catch { return }
                    metrics.export(hub.snapshot())
                    if case .success(let endpoint) = webrtc { metrics.export(webrtc: await endpoint.stats()) }
                }
            }
            for await packet in context.input {
                if let failure = serverState.failure { throw failure }
                if let evicted = hub.publish(packet) {
                    await context.reportEvicted(stream: evicted, capacity: settings.maxStreams, emitEvent: false)
                }
                // The live viewers first (WebRTC only hops to its event loop): LL-HLS cuts parts, which its
                // players fetch in their own time, and would otherwise add to every WebRTC frame's delivery.
                feed?.publish(packet)
                hls?.publish(packet)
            }
            // The stream ended: let viewers take what is queued, within bounds.
            hub.finish()
            hls?.finish()
            await withTaskGroup(of: Void.self) { drain in
                drain.addTask { await hub.waitUntilViewersLeft() }
                drain.addTask { try? await clock.sleep(for: settings.drainTimeout) }
                await drain.next()
                drain.cancelAll()
            }
            metrics.export(hub.snapshot())
            await services.triggerGracefulShutdown()
            // Viewers still connected after the drain are cut off here.
            hub.closeAll()
            await feed?.endpoint.shutdown()
            try await group.next()
            group.cancelAll()
        }
    }

    /// The WebRTC endpoint, or why WHEP answers 503: a failure here is logged, the rest of the sink runs.
    static func startWebRTC(_ settings: WebSettings, node: String, logger: Logger, clock: any PipelineClock) async -> Result<WebRTCEndpoint, WebError> {
        var configuration = WebRTCEndpoint.Configuration()
        configuration.maxStreams = settings.maxStreams
        configuration.gopCacheBytes = settings.gopCache
        configuration.maxSessions = settings.webrtcMaxSessions
        configuration.maxSessionsPerClient = max(1, settings.webrtcMaxSessions / 4)
        let delivery = DeliveryTimer(node: node, way: "webrtc")
        configuration.frameSent = { receivedAt in delivery.record(since: receivedAt) }
        do {
            let endpoint = try await WebRTCEndpoint.start(host: settings.host, port: settings.webrtcPort, configuration: configuration,
                                                          logger: logger, clock: clock)
            let host = settings.host.contains(":") ? "[\(settings.host)]" : settings.host
            logger.notice("WebRTC (WHEP) on udp \(host):\(endpoint.port): POST an offer to /whep/STREAM")
            return .success(endpoint)
        } catch {
            let failure = WebError(message: "cannot serve WebRTC on udp port \(settings.webrtcPort): \(error)")
            logger.error("\(failure.message); WHEP answers 503, the rest of the web sink runs")
            return .failure(failure)
        }
    }

    static func tlsConfiguration(cert: String, key: String, node: String) throws -> TLSConfiguration {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(cert).map { NIOSSLCertificateSource.certificate($0) }
            let privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
            return TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(privateKey))
        } catch {
            throw WebError(message: "node '\(node)': cannot load 'tls-cert' \(cert) / 'tls-key' \(key): \(error)")
        }
    }
}

/// Whether the server listens, or why it stopped: read by the packet loop,
/// which cannot be interrupted, and awaited once at start.
final class ServerState: Sendable {
    /// Fires once the server listens or has failed.
    private let settled = OneShotSignal()
    private let failureState = Mutex<WebError?>(nil)

    func listening() { settled.fire() }

    func failed(_ failure: WebError) {
        failureState.withLock { $0 = failure }
        settled.fire()
    }

    var failure: WebError? { failureState.withLock { $0 } }

    func waitUntilListening() async throws {
        await settled.wait()
        if let failure { throw failure }
    }
}

/// A failure of the web sink, said in words.
struct WebError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Per-stream viewer counters through swift-metrics (Prometheus under
/// `camflow run`), exported as deltas once a second.
struct ViewerMetrics: Sendable {
    let node: String
    private let deltas = CounterDeltas()

    init(node: String) {
        self.node = node
    }

    /// WebRTC playback's sessions and counters.
    func export(webrtc stats: WebRTCEndpointStats) {
        let dimensions = [("node", node)]
        Gauge(label: "camflow_webrtc_sessions", dimensions: dimensions).record(stats.sessions)
        Gauge(label: "camflow_webrtc_connected_peers", dimensions: dimensions).record(stats.connectedPeers)
        deltas.add("camflow_webrtc_rtp_packets_sent_total", dimensions, total: stats.rtpPacketsSent)
        deltas.add("camflow_webrtc_packets_resent_total", dimensions, total: stats.packetsResent)
        deltas.add("camflow_webrtc_datagrams_dropped_total", dimensions, total: stats.datagramsDropped)
        deltas.add("camflow_webrtc_frames_skipped_total", dimensions, total: stats.framesSkipped)
        deltas.add("camflow_webrtc_fingerprint_mismatches_total", dimensions, total: stats.fingerprintMismatches)
    }

    func export(_ snapshot: RestreamSnapshot) {
        for stream in snapshot.streams {
            let dimensions = [("node", node), ("stream", stream.name)]
            deltas.add("camflow_web_fragments_sent_total", dimensions, total: stream.sentFragments)
            deltas.add("camflow_web_fragments_dropped_total", dimensions, total: stream.droppedFragments)
            Gauge(label: "camflow_web_viewers", dimensions: dimensions).record(stream.viewers)
        }
    }
}
