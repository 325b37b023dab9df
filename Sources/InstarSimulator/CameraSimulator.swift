public import Camflow
import InstarProtocol
import Foundation
public import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import Synchronization

/// How the simulator behaves: what it serves, to whom, and which faults it injects.
public struct CameraSimulatorConfiguration: Sendable {
    /// How the byte stream is cut into WebSocket messages.
    public enum Chunking: String, Sendable, CaseIterable {
        /// Every top-level box its own message (ftyp, moov, moof, mdat).
        case box
        /// The init segment, then one message per moof + mdat.
        case fragment
        /// Random cuts of 1 byte to 16 KiB, across box boundaries.
        case random
    }

    public var host = "127.0.0.1"
    /// The first camera's port; the others follow. 0: any free port for each.
    public var port = 0
    public var cameras = 1
    /// Credentials the cameras require; nil: no authentication.
    public var username: String? = "admin"
    public var password: String? = "instar"
    /// Also accept `?user=&pwd=` on the path (some firmware does).
    public var acceptsQueryAuthentication = false
    public var media: SimulatedMedia
    public var chunking: Chunking = .fragment
    /// Serve wss:// with this certificate.
    public var tls: SelfSignedCertificate?
    /// Close a connection whose client said nothing for this long (the camera: 60 s).
    public var clientIdleTimeout: Duration = .seconds(60)
    /// Hang up every connection this long after it started streaming.
    public var dropEvery: Duration?
    /// Stop sending (keep the socket) this long after streaming started.
    public var stallAfter: Duration?
    /// Send a message of malformed bytes this often.
    public var garbageEvery: Duration?
    /// Media seconds per wall second (1: real time).
    public var speed: Double = 1
    /// Also serve every camera over RTSP on this port (0: an ephemeral one),
    /// as `rtsp://HOST:PORT/cameraN`, with the same credentials; nil: no RTSP.
    public var rtspPort: Int?
    /// The time media is paced by and idle clients are measured on; a test
    /// passes one it moves by hand.
    public var clock: any PipelineClock = SystemClock()

    public init(media: SimulatedMedia) {
        self.media = media
    }
}

/// A WebSocket server that behaves like an INSTAR camera: `/ws`, HTTP Basic
/// authentication (401 with a challenge otherwise), the text commands, the
/// 60 s client idle limit, and fMP4 sent in real time by media timestamps,
/// looping with continuous timestamps. Every camera keeps one live timeline:
/// a client that connects (or reconnects) joins at the next fragment.
public final class CameraSimulator: Sendable {
    public let configuration: CameraSimulatorConfiguration
    private let logger: Logger

    public init(configuration: CameraSimulatorConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        continuousOrigin = configuration.clock.now
    }

    /// Where every camera's timeline starts, in `MonotonicClock` nanoseconds
    /// (the system's monotonic clock, shared with other processes): media
    /// second `t` is sent at `timelineOrigin + t / speed` (after the fragment
    /// holding it has ended). Benchmarks measure latency against it: another
    /// process's reference, not a time this one waits on.
    public let timelineOrigin = MonotonicClock.now()
    private let commands = Mutex<[String: Int]>([:])

    /// How often each client text message was received, over all cameras.
    public var receivedCommands: [String: Int] { commands.withLock { $0 } }
    private let continuousOrigin: ContinuousClock.Instant

    /// Listens and serves until the task is cancelled. `ready` receives each
    /// camera's WebSocket URL once all are listening.
    public func run(ready: @Sendable ([String]) -> Void) async throws {
        try await serve { ready($0.map(\.webSocket)) }
    }

    /// Listens and serves until the task is cancelled. `ready` receives each
    /// camera's URLs (RTSP too with `rtspPort`) once all are listening.
    public func serve(ready: @Sendable ([SimulatedCameraEndpoint]) -> Void) async throws {
        let sslContext: NIOSSLContext? = try configuration.tls.map { certificate in
            let configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(certificate.certificatePEM.utf8)).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(certificate.privateKeyPEM.utf8), format: .pem)))
            return try NIOSSLContext(configuration: configuration)
        }
        var servers: [(NIOAsyncChannel<EventLoopFuture<Connection>, Never>, Camera)] = []
        for index in 0..<configuration.cameras {
            let port = configuration.port == 0 ? 0 : configuration.port + index
            let camera = Camera(number: index + 1, origin: continuousOrigin, clock: configuration.clock)
            let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .bind(host: configuration.host, port: port) { channel in
                    self.configure(channel, sslContext: sslContext)
                }
            servers.append((server, camera))
        }
        let rtsp = try await SimulatedRTSP.start(configuration, logger: logger)
        let scheme = sslContext == nil ? "ws" : "wss"
        ready(servers.map { server, camera in
            SimulatedCameraEndpoint(webSocket: "\(scheme)://\(configuration.host):\(server.channel.localAddress?.port ?? 0)/ws",
                                    rtsp: rtsp?.url(camera: camera.number))
        })
        do {
            try await serve(servers, rtsp: rtsp)
        } catch {
            await rtsp?.server.shutdown()
            throw error
        }
        await rtsp?.server.shutdown()
    }

    private func serve(_ servers: [(NIOAsyncChannel<EventLoopFuture<Connection>, Never>, Camera)], rtsp: SimulatedRTSP?) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            if let rtsp {
                for (_, camera) in servers {
                    group.addTask { try await rtsp.feed(camera) }
                }
            }
            for (server, camera) in servers {
                group.addTask {
                    try await server.executeThenClose { connections in
                        try await withThrowingDiscardingTaskGroup { connectionsGroup in
                            for try await upgrade in connections {
                                connectionsGroup.addTask {
                                    guard case .camera(let socket) = try? await upgrade.get() else { return }
                                    await self.serve(socket, camera: camera)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    // MARK: - Connections

    private enum Connection: Sendable {
        case camera(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>)
        case refused
    }

    /// nil when the request may be upgraded; else the status to refuse it with.
    private func admission(_ head: HTTPRequestHead) -> HTTPResponseStatus? {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        guard path == CameraPath.webSocket else { return .notFound }
        guard let username = configuration.username else { return nil }
        let expected = BasicCredentials(username: username, password: configuration.password ?? "")
        if let header = head.headers.first(name: "Authorization"), BasicCredentials(authorization: header) == expected {
            return nil
        }
        if configuration.acceptsQueryAuthentication, let offered = QueryCredentials(uri: head.uri),
           offered.username == expected.username, offered.password == expected.password {
            return nil
        }
        return .unauthorized
    }

    private func configure(_ channel: any Channel, sslContext: NIOSSLContext?) -> EventLoopFuture<EventLoopFuture<Connection>> {
        channel.eventLoop.makeCompletedFuture {
            if let sslContext {
                try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
            }
            let upgrader = NIOTypedWebSocketServerUpgrader<Connection>(
                maxFrameSize: 1 << 20,
                shouldUpgrade: { channel, head in
                    // NIO drops the head of a declined upgrade request, so the refusal is answered here.
                    guard let status = self.admission(head) else { return channel.eventLoop.makeSucceededFuture(HTTPHeaders()) }
                    HTTPRefusal.write(status, realm: "INSTAR", version: head.version, on: channel)
                    return channel.eventLoop.makeSucceededFuture(nil)
                },
                upgradePipelineHandler: { channel, _ in
                    channel.eventLoop.makeCompletedFuture {
                        Connection.camera(try NIOAsyncChannel(wrappingChannelSynchronously: channel))
                    }
                })
            return try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(
                configuration: .init(upgradeConfiguration: .init(
                    upgraders: [upgrader],
                    notUpgradingCompletionHandler: { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(RefusalResponder(admission: self.admission))
                            return Connection.refused
                        }
                    })))
        }
    }

    /// One client: commands in, media out.
    private func serve(_ socket: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, camera: Camera) async {
        let channel = socket.channel
        let peer = channel.remoteAddress.map { "\($0)" } ?? "?"
        logger.info("camera \(camera.number): client \(peer) connected")
        let clock = configuration.clock
        let lastHeard = ClientActivity(clock: clock)
        let control = StreamControl()
        do {
            try await socket.executeThenClose { inbound, outbound in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        // The camera closes connections whose client has gone quiet. A message
                        // heard meanwhile moved the deadline: waking before it re-arms the wait.
                        let limit = self.configuration.clientIdleTimeout
                        while clock.now < lastHeard.last.advanced(by: limit) {
                            try await clock.sleep(until: lastHeard.last.advanced(by: limit))
                        }
                        self.logger.info("camera \(camera.number): client \(peer) idle, closing")
                        try? await channel.close()
                    }
                    for try await frame in inbound {
                        lastHeard.heard()
                        switch frame.opcode {
                        case .text:
                            let text = String(buffer: frame.unmaskedData)
                            guard let command = CameraCommand(text) else {
                                // Counted as one kind, echoed short: a client's text must not grow memory.
                                self.commands.withLock { $0["unknown", default: 0] += 1 }
                                try await outbound.write(Self.text("error: unknown command '\(text.prefix(64))'", channel))
                                continue
                            }
                            self.commands.withLock { $0[command.text, default: 0] += 1 }
                            switch command {
                            case .startLivestream(let number):
                                if let number, !CameraCommand.channels.contains(number) {
                                    try await outbound.write(Self.text("error: no channel \(number); use 11, 12 or 13", channel))
                                    continue
                                }
                                let generation = control.start()
                                group.addTask {
                                    try await self.stream(generation: generation, control: control, camera: camera,
                                                          outbound: outbound, channel: channel, peer: peer)
                                }
                            case .stop:
                                control.stop()
                            case .keepAlive:
                                continue
                            }
                        case .ping:
                            try await outbound.write(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData))
                        case .connectionClose:
                            try? await outbound.write(WebSocketFrame(fin: true, opcode: .connectionClose,
                                                                     data: channel.allocator.buffer(integer: UInt16(1000))))
                            group.cancelAll()
                            return
                        default:
                            continue
                        }
                    }
                    group.cancelAll()
                }
            }
        } catch {
            logger.debug("camera \(camera.number): client \(peer): \(error)")
        }
        control.stop()
        logger.info("camera \(camera.number): client \(peer) disconnected")
    }

    /// Sends the init segment, then each fragment when the camera's live timeline reaches its end,
    /// as a camera sends a fragment once it has recorded it.
    private func stream(generation: Int, control: StreamControl, camera: Camera,
                        outbound: NIOAsyncChannelOutboundWriter<WebSocketFrame>, channel: any Channel,
                        peer: String) async throws {
        let media = configuration.media
        let clock = configuration.clock
        let started = clock.now
        try await send(media.initSegment, outbound, channel)
        var (loop, index) = media.position(startingAtOrAfter: camera.mediaSeconds(speed: configuration.speed))
        var nextGarbage = configuration.garbageEvery.map { started + $0 }
        let dropAt = configuration.dropEvery.map { started + $0 }
        let stallAt = configuration.stallAfter.map { started + $0 }
        while control.isCurrent(generation) {
            let due = camera.instant(ofMediaSeconds: media.end(index, loop: loop), speed: configuration.speed)
            let wake = [due, nextGarbage, dropAt, stallAt].compactMap { $0 }.min() ?? due
            try await clock.sleep(until: wake)
            let now = clock.now
            if let dropAt, now >= dropAt {
                logger.info("camera \(camera.number): hanging up on \(peer) (--drop-every)")
                try? await channel.close()
                return
            }
            if let stallAt, now >= stallAt {
                logger.info("camera \(camera.number): stalling \(peer) (--stall-after)")
                // Until the connection ends (this task is cancelled then).
                await OneShotSignal().wait()
                return
            }
            if let garbage = nextGarbage, now >= garbage, let every = configuration.garbageEvery {
                var bytes = channel.allocator.buffer(capacity: 512)
                bytes.writeRepeatingByte(0xFF, count: 512)
                try await outbound.write(WebSocketFrame(fin: true, opcode: .binary, data: bytes))
                nextGarbage = garbage + every
                continue
            }
            guard now >= due, control.isCurrent(generation) else { continue }
            try await send(media.fragment(index, loop: loop), outbound, channel)
            index += 1
            if index == media.fragments.count {
                index = 0
                loop += 1
            }
        }
    }

    /// Cuts `bytes` into messages as configured and writes them.
    private func send(_ bytes: ByteBuffer, _ outbound: NIOAsyncChannelOutboundWriter<WebSocketFrame>,
                      _ channel: any Channel) async throws {
        let messages: [ByteBuffer]
        switch configuration.chunking {
        case .fragment:
            messages = [bytes]
        case .box:
            messages = SimulatedMedia.boxes(bytes)
        case .random:
            var rest = bytes
            var pieces: [ByteBuffer] = []
            while rest.readableBytes > 0, let piece = rest.readSlice(length: min(Int.random(in: 1...16384), rest.readableBytes)) {
                pieces.append(piece)
            }
            messages = pieces
        }
        for message in messages {
            try await outbound.write(WebSocketFrame(fin: true, opcode: .binary, data: message))
        }
    }

    private static func text(_ text: String, _ channel: any Channel) -> WebSocketFrame {
        WebSocketFrame(fin: true, opcode: .text, data: channel.allocator.buffer(string: text))
    }
}

/// One simulated camera: its live timeline, shared by all its clients.
final class Camera: Sendable {
    let number: Int
    let origin: ContinuousClock.Instant
    let clock: any PipelineClock

    init(number: Int, origin: ContinuousClock.Instant, clock: any PipelineClock) {
        self.number = number
        self.origin = origin
        self.clock = clock
    }

    func mediaSeconds(speed: Double) -> Double { clock.elapsed(since: origin).seconds * speed }

    func instant(ofMediaSeconds seconds: Double, speed: Double) -> ContinuousClock.Instant {
        origin + .nanoseconds(Int64(seconds / speed * 1e9))
    }
}
