import NIOCore
import NIOPosix
import RTSPProtocol
import Synchronization

/// What one benchmark client has seen, read from the benchmark's task while
/// the client's event loop writes it.
final class RTSPBenchClientStats: Sendable {
    private let received = Atomic<Int>(0)
    private let playing = Atomic<Bool>(false)
    private let ended = Atomic<Bool>(false)
    private let failed = Mutex<String?>(nil)

    /// Bytes received after PLAY was answered (interleaved headers, RTP and RTCP).
    var bytes: Int { received.load(ordering: .relaxed) }
    var isPlaying: Bool { playing.load(ordering: .relaxed) }
    var hasEnded: Bool { ended.load(ordering: .relaxed) }
    var failure: String? { failed.withLock { $0 } }

    func add(_ count: Int) { received.add(count, ordering: .relaxed) }
    func play() { playing.store(true, ordering: .relaxed) }
    func end() { ended.store(true, ordering: .relaxed) }
    func fail(_ reason: String) { failed.withLock { $0 = $0 ?? reason } }
}

/// A light RTSP/TCP client for `camflow bench rtsp`: RTSPClientSession's
/// OPTIONS, DESCRIBE, SETUP of each track interleaved and PLAY, then the
/// bytes counted without parsing them, so the benchmark's own CPU stays
/// small beside the server's. Keep-alives at half the session timeout.
final class RTSPBenchClient: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var session: RTSPClientSession
    /// nil once playing: from then on bytes are only counted.
    private var parser: RTSPParser? = RTSPParser()
    private var random = SystemRandomNumberGenerator()
    private var keepAlive: Scheduled<Void>?
    private let stats: RTSPBenchClientStats

    init(url: String, stats: RTSPBenchClientStats) {
        session = RTSPClientSession(url: url, transport: .tcp)
        session.userAgent = "camflow-bench"
        self.stats = stats
    }

    /// Connects a client to 127.0.0.1:`port` and starts its requests.
    static func connect(url: String, port: Int, stats: RTSPBenchClientStats,
                        group: MultiThreadedEventLoopGroup) async throws -> any Channel {
        try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RTSPBenchClient(url: url, stats: stats))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
    }

    func channelActive(context: ChannelHandlerContext) {
        perform(session.start(random: &random), context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard var parser else {
            stats.add(buffer.readableBytes)
            return
        }
        // Out of the handler while it is fed, so appending does not copy a shared buffer.
        self.parser = nil
        parser.append(buffer)
        do {
            while let frame = try parser.next() {
                switch frame {
                case .response(let response):
                    perform(session.receive(response, random: &random), context: context)
                    if stats.isPlaying {
                        stats.add(parser.bufferedBytes)
                        return
                    }
                case .interleaved(_, let payload):
                    stats.add(payload.readableBytes + 4)
                case .request:
                    continue
                }
            }
        } catch {
            fail("\(error)", context: context)
            return
        }
        self.parser = parser
    }

    func channelInactive(context: ChannelHandlerContext) {
        keepAlive?.cancel()
        if !stats.isPlaying { stats.fail("the server closed the connection") }
        stats.end()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail("\(error)", context: context)
    }

    private func perform(_ action: RTSPClientSession.Action, context: ChannelHandlerContext) {
        switch action {
        case .send(let request):
            context.writeAndFlush(wrapOutboundOut(request.bytes), promise: nil)
        case .playing:
            stats.play()
            scheduleKeepAlive(context: context)
        case .redirect(let url):
            fail("redirected to \(url)", context: context)
        case .failed(let error):
            fail(error.description, context: context)
        case .none:
            break
        }
    }

    private func scheduleKeepAlive(context: ChannelHandlerContext) {
        let seconds = max(5, session.sessionTimeout.components.seconds / 2)
        keepAlive = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(seconds)) {
            // The answer is counted with the media, not read: the session only needs the request.
            if case .send(let request) = self.session.keepAlive(random: &self.random) {
                context.writeAndFlush(self.wrapOutboundOut(request.bytes), promise: nil)
            }
            self.scheduleKeepAlive(context: context)
        }
    }

    private func fail(_ reason: String, context: ChannelHandlerContext) {
        stats.fail(reason)
        context.close(promise: nil)
    }
}
