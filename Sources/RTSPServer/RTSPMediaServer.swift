public import Camflow
public import Logging
public import NIOCore
import NIOPosix
import RTSPProtocol
import Synchronization

/// An RTSP/1.0 server over SwiftNIO that serves each published stream as
/// `rtsp://HOST:PORT/{stream}` (tracks `/{stream}/trackID=N`). Media comes
/// in as fMP4: an init segment, then `moof`+`mdat` fragments, exactly as
/// `mp4-parse` emits them; it is packetized once per stream and the same
/// RTP packets go to every client. The engine's packets are not needed:
/// the `rtsp` node and the simulator both feed it.
public final class RTSPMediaServer: Sendable {
    public let configuration: RTSPServerConfiguration
    let clock: any PipelineClock
    let logger: Logger
    let hub: StreamHub
    let registry: ConnectionRegistry
    let ports: UDPPortPool?
    let authentication: RTSPAccess?
    let metrics: RTSPMetrics
    /// Wrong credentials per peer: ten a minute, then refused for the rest of it.
    let credentialFailures: CredentialFailureLimiter
    /// The clock's instant the server's durations count from (sessions, nonces, activity).
    private let origin: ContinuousClock.Instant
    /// PLAYs told in the log: the first, then at most one line per 10 s with the count, since a
    /// client without credentials may PLAY thousands of times a second.
    let playsTold = Mutex(OccasionalReport())
    private let nextID = Atomic<Int>(1)
    private let running = Mutex<(listener: (any Channel)?, tasks: [Task<Void, Never>])>((nil, []))

    public init(configuration: RTSPServerConfiguration, clock: any PipelineClock = SystemClock(),
                logger: Logger = Logger(label: "camflow.rtsp")) {
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
        origin = clock.now
        hub = StreamHub(maxStreams: max(configuration.maxStreams, 1), mtu: configuration.mtu, gopLimit: configuration.gopCacheBytes)
        registry = ConnectionRegistry(maxConnections: configuration.maxConnections,
                                      maxPerClient: configuration.maxConnectionsPerClient)
        ports = configuration.udpPorts.map { UDPPortPool(range: $0) }
        authentication = configuration.credentials.map { RTSPAccess(credentials: $0, realm: configuration.realm) }
        metrics = RTSPMetrics(node: configuration.metricsNode)
        credentialFailures = CredentialFailureLimiter(clock: clock)
    }

    var durationNow: Duration { origin.duration(to: clock.now) }

    var nanosecondsNow: Int64 {
        let (seconds, attoseconds) = durationNow.components
        return seconds &* 1_000_000_000 &+ attoseconds / 1_000_000_000
    }

    /// A session id of 16 hex digits from the system's CSPRNG: not guessable from another.
    static func newSessionID() -> String {
        var random = SystemRandomNumberGenerator()
        let value: UInt64 = random.next()
        let text = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: 16 - text.count) + text
    }

    /// Listens on `host:port` (port 0: an ephemeral one) and returns the bound port.
    public func start(host: String, port: Int) async throws -> Int {
        // What NIO holds for a socket before the client's own queue (and its GOP drops) takes over: a part of it.
        let high = min(max(configuration.clientQueueBytes / 4, 16 << 10), 256 << 10)
        // The kernel's send buffer is bounded too (no autotuning to megabytes): video a stalled client's socket
        // holds is stale, and the client's queue, which drops whole GOPs, should decide instead.
        let sendBuffer = min(max(configuration.clientQueueBytes / 8, 16 << 10), 1 << 20)
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.socketOption(.so_sndbuf), value: SocketOptionValue(sendBuffer))
            .childChannelOption(.writeBufferWaterMark, value: .init(low: high / 2, high: high))
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture { try self.accept(channel) }
            }
        let listener = try await bootstrap.bind(host: host, port: port).get()
        let bound = listener.localAddress?.port ?? port
        let tick = min(configuration.sessionTimeout / 4, .seconds(1))
        let sweeper = Task { [self] in
            var next = clock.now
            while true {
                next = max(next.advanced(by: tick), clock.now)
                do { try await clock.sleep(until: next) } catch { return }
                sweep()
            }
        }
        let reporter = Task { [self] in
            while (try? await clock.sleep(for: configuration.senderReportInterval)) != nil {
                for (track, report, clients) in hub.senderReports(now: clock.now, wallNow: clock.wallNow) {
                    for client in clients { client.sendControl(track: track, report) }
                }
            }
        }
        running.withLock { $0 = (listener, [sweeper, reporter]) }
        return bound
    }

    private func accept(_ channel: any Channel) throws {
        let handle = ConnectionHandle(id: nextID.add(1, ordering: .relaxed).oldValue, group: PeerGroup.of(channel.remoteAddress),
                                      channel: channel, now: nanosecondsNow)
        if let reason = registry.admit(handle) {
            metrics.refused(reason)
            channel.close(promise: nil)
            return
        }
        try channel.pipeline.syncOperations.addHandler(RTSPConnection(server: self, handle: handle))
    }

    /// Closes connections silent for the session timeout; exports the metrics.
    private func sweep() {
        let timeout = configuration.sessionTimeout
        let cutoff = nanosecondsNow &- (timeout.components.seconds &* 1_000_000_000 &+ timeout.components.attoseconds / 1_000_000_000)
        for handle in registry.silent(since: cutoff) {
            metrics.refused("session-timeout")
            handle.channel.close(promise: nil)
        }
        metrics.export(hub.snapshot(), connections: registry.count)
    }

    /// Takes a stream's init segment (ftyp + moov); a new one is a discontinuity
    /// (a camera reconnected): timestamps continue, clients are kept unless the tracks changed.
    public func publish(stream: String, initSegment: ByteBuffer) throws(RTSPMediaError) {
        let dropped = try hub.publish(stream: stream, initSegment: initSegment)
        for client in dropped { client.stop(closeConnection: true) }
    }

    /// Takes one fragment (moof + mdat) of a stream whose init segment came before.
    /// `keyframe`: the fragment starts with a video keyframe (the samples' flags decide; kept for callers' symmetry).
    public func publish(stream: String, fragment: ByteBuffer, keyframe: Bool) throws(RTSPMediaError) {
        let (packets, clients) = try hub.publish(stream: stream, fragment: fragment, now: clock.now)
        for client in clients { client.deliver(packets) }
    }

    /// The stream has ended: its clients are disconnected and its cache dropped.
    public func end(stream: String) {
        for client in hub.end(stream: stream) { client.stop(closeConnection: true) }
    }

    /// Stops listening and closes every connection.
    public func shutdown() async {
        let (listener, tasks) = running.withLock { state in
            defer { state = (nil, []) }
            return state
        }
        for task in tasks { task.cancel() }
        try? await listener?.close()
        for client in hub.removeAll() { client.stop(closeConnection: true) }
        for handle in registry.all() { try? await handle.channel.close() }
    }

    // MARK: UDP

    /// Binds a pair of server ports on `loop` aimed at the client's ports; reading is off (what a client sends there is never read).
    func bindUDP(ports: UDPPortPool, on loop: any EventLoop, client: SocketAddress, clientPort: ClosedRange<Int>)
        -> EventLoopFuture<UDPPair>
    {
        guard let rtpDestination = try? client.withPort(clientPort.lowerBound),
              let rtcpDestination = try? client.withPort(clientPort.upperBound)
        else { return loop.makeFailedFuture(RTSPMediaError("no client address")) }
        let host = client.protocol == .inet6 ? "::" : "0.0.0.0"
        return Self.bindPair(ports: ports, on: loop, host: host, after: nil, tries: 16) { rtp, rtcp, port in
            UDPPair(rtp: rtp, rtcp: rtcp, serverPort: port, rtpDestination: rtpDestination, rtcpDestination: rtcpDestination)
        }
    }

    /// Tries free pairs of the range in turn (another program may hold some ports), at most `tries`.
    private static func bindPair(ports: UDPPortPool, on loop: any EventLoop, host: String, after: Int?, tries: Int,
                                 make: @escaping @Sendable (any Channel, any Channel, Int) -> UDPPair) -> EventLoopFuture<UDPPair> {
        guard tries > 0, let port = ports.reserve(after: after) else {
            return loop.makeFailedFuture(RTSPMediaError("no free UDP port pair in \(ports.range)"))
        }
        return DatagramBootstrap(group: loop).channelOption(.autoRead, value: false).bind(host: host, port: port)
            .flatMap { rtp in
                DatagramBootstrap(group: loop).channelOption(.autoRead, value: false).bind(host: host, port: port + 1)
                    .map { rtcp in make(rtp, rtcp, port) }
                    .flatMapError { error in
                        rtp.close(promise: nil)
                        return loop.makeFailedFuture(error)
                    }
            }
            .flatMapError { _ in
                let next = bindPair(ports: ports, on: loop, host: host, after: port, tries: tries - 1, make: make)
                ports.release(port)
                return next
            }
    }

    func closeUDP(_ pair: UDPPair) {
        pair.rtp.close(promise: nil)
        pair.rtcp.close(promise: nil)
        ports?.release(pair.serverPort)
    }
}

extension SocketAddress {
    /// The same host, another port.
    func withPort(_ port: Int) throws -> SocketAddress {
        var copy = self
        copy.port = port
        return copy
    }
}
