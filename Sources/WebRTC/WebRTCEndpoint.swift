public import Camflow
public import Logging
public import NIOCore
import NIOPosix

/// WebRTC playback (WHEP) for one web sink: one UDP port for every peer
/// (ICE-lite, DTLS-SRTP, RTP out, RTCP in), answering offers and sending
/// each stream's video to the peers that asked for it. All state lives on
/// the UDP channel's event loop; the pipeline only enqueues.
public final class WebRTCEndpoint: Sendable {
    /// The endpoint's bounds.
    public struct Configuration: Sendable {
        /// Sessions at once (answered but not yet connected ones included).
        public var maxSessions = 32
        /// Streams whose video is cached.
        public var maxStreams = 16
        /// Bytes of a stream's current GOP kept (as RTP payloads) for joiners and PLI/FIR.
        public var gopCacheBytes = 8 << 20
        /// Sent packets kept per peer to answer NACKs.
        public var retransmissionPackets = 512
        /// The largest RTP packet before SRTP's tag (DTLS datagrams too).
        public var mtu = 1200
        /// From the answer to keyed SRTP: a session not connected by then is closed, whatever STUN
        /// checks keep coming (checks alone must not hold a slot).
        public var handshakeTimeout: Duration = .seconds(15)
        /// Sessions one client (the HTTP client's address) may hold at once: a quarter of the cap.
        public var maxSessionsPerClient = 8
        /// When the slots (all, or a client's) are full, a session not connected this long after its
        /// answer gives its slot to a new offer: a browser connects within a second.
        public var pendingGrace: Duration = .seconds(3)
        /// STUN checks that need an HMAC per second from one source IP address; more are dropped unverified.
        public var stunChecksPerSecondPerAddress = 50
        /// Told, on the event loop, of each measured frame (a nonzero `receivedAt`) once its
        /// last SRTP packet to a peer was flushed to the socket: once per peer.
        public var frameSent: (@Sendable (_ receivedAt: UInt64) -> Void)?

        public init() {}
    }

    /// The bound UDP port.
    public let port: Int
    private let channel: any Channel
    private let core: NIOLoopBound<WebRTCEndpointCore>

    private init(port: Int, channel: any Channel, core: NIOLoopBound<WebRTCEndpointCore>) {
        self.port = port
        self.channel = channel
        self.core = core
    }

    /// Loads OpenSSL and libsrtp2, makes the certificate and binds the UDP port
    /// (0 = any free one).
    /// - Throws: `DTLSError` without the libraries; NIO's error when the port cannot be bound.
    public static func start(host: String, port: Int, configuration: Configuration = Configuration(),
                             logger: Logger = Logger(label: "camflow.webrtc"),
                             clock: any PipelineClock = SystemClock(),
                             group: (any EventLoopGroup)? = nil) async throws -> WebRTCEndpoint {
        let context = try DTLSContext(certificate: try DTLSCertificate(clock: clock))
        let loop = (group ?? MultiThreadedEventLoopGroup.singleton).next()
        let core = try await loop.submit {
            NIOLoopBound(WebRTCEndpointCore(configuration: configuration, context: context, logger: logger, clock: clock),
                         eventLoop: loop)
        }.get()
        let channel = try await DatagramBootstrap(group: loop)
            .channelOption(.writeBufferWaterMark, value: .init(low: 1 << 20, high: 4 << 20))
            .channelOption(.socketOption(.so_sndbuf), value: 4 << 20)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(WebRTCDatagramHandler(core: core.value))
                }
            }
            .bind(host: host, port: port).get()
        let bound = channel.localAddress?.port ?? port
        try await loop.submit {
            core.value.channel = channel
            core.value.port = bound
            core.value.startSweeping()
        }.get()
        return WebRTCEndpoint(port: bound, channel: channel, core: core)
    }

    /// Answers a WHEP offer (the POST's body) for `stream`, offering
    /// `candidateHost` (an IP address) and `candidatePort` (nil: this endpoint's port);
    /// `client` (the HTTP client's address) is held to `maxSessionsPerClient`.
    public func answer(offer: ByteBuffer, stream: String, candidateHost: String,
                       candidatePort: Int? = nil, client: String? = nil) async -> Result<WHEPAnswerResult, WHEPRefusal> {
        let core = self.core
        do {
            return try await channel.eventLoop.submit {
                core.value.answer(offer: offer, stream: stream, candidateHost: candidateHost, candidatePort: candidatePort,
                                  client: client)
            }.get()
        } catch {
            return .failure(WHEPRefusal(status: 503, "WebRTC stopped"))
        }
    }

    /// Ends a session (WHEP DELETE); false when there is none by that id for that stream.
    public func close(stream: String, session: String) async -> Bool {
        let core = self.core
        return (try? await channel.eventLoop.submit { () -> Bool in
            guard core.value.peers[session]?.stream == stream else { return false }
            core.value.close(session, reason: "DELETE")
            return true
        }.get()) ?? false
    }

    /// A stream's video track, from its (new) init segment.
    public func publish(stream: String, track: WebRTCVideoTrack) {
        let core = self.core
        channel.eventLoop.execute {
            let core = core.value
            if let media = core.streams[stream] {
                media.update(track, mtu: core.configuration.mtu)
            } else if core.streams.count < core.configuration.maxStreams {
                core.streams[stream] = WebRTCStreamMedia(track: track, mtu: core.configuration.mtu,
                                                         gopLimit: core.configuration.gopCacheBytes)
            }
        }
    }

    /// A fragment's video frames, in decode order: sent paced by their times.
    public func publish(stream: String, frames: [WebRTCVideoFrame]) {
        guard !frames.isEmpty else { return }
        let core = self.core
        channel.eventLoop.execute { core.value.enqueue(frames, stream: stream) }
    }

    /// A stream turned out to carry B-frames: offers for it are refused from now on.
    public func noteBFrames(stream: String) {
        let core = self.core
        channel.eventLoop.execute { core.value.streams[stream]?.noteBFrames() }
    }

    /// Counters so far.
    public func stats() async -> WebRTCEndpointStats {
        let core = self.core
        return (try? await channel.eventLoop.submit { core.value.stats }.get()) ?? WebRTCEndpointStats()
    }

    /// Runs the once-a-second housekeeping now (tests that move a `ManualClock`).
    func sweepNow() async {
        let core = self.core
        try? await channel.eventLoop.submit { core.value.sweep() }.get()
    }

    /// Closes every session and the port.
    public func shutdown() async {
        let core = self.core
        try? await channel.eventLoop.submit {
            core.value.stopSweeping()
            for id in Array(core.value.peers.keys) { core.value.close(id, reason: "the web sink stopped") }
        }.get()
        try? await channel.close()
    }
}

/// Hands every datagram to the endpoint's core.
final class WebRTCDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let core: WebRTCEndpointCore

    init(core: WebRTCEndpointCore) {
        self.core = core
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        core.receive(unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A UDP socket reports ICMP errors for earlier sends (a peer gone): nothing to close.
    }
}
