import NIOCore
import NIOPosix
import Synchronization

/// What the UDP side of a session hands to its media task.
enum CameraMediaInput: Sendable {
    /// PLAY was answered: from here the packets are turned into MP4 by this
    /// assembler; `mapping` gives the assembler's track of a SETUP track.
    case play(RTPMediaAssembler, mapping: [Int: Int])
    /// An RTP packet of track `track`.
    case packet(track: Int, ByteBuffer)
    /// The server said goodbye on track `track` (RTCP BYE): the stream ended, what is held goes out.
    case bye(track: Int)

    /// Whether an RTCP compound packet holds a BYE (RFC 3550 §6.6), its packets' lengths checked.
    static func isBye(_ rtcp: ByteBuffer) -> Bool {
        var rest = rtcp
        while rest.readableBytes >= 4, let first = rest.getInteger(at: rest.readerIndex, as: UInt8.self),
              let type = rest.getInteger(at: rest.readerIndex + 1, as: UInt8.self),
              let words = rest.getInteger(at: rest.readerIndex + 2, as: UInt16.self) {
            guard first >> 6 == 2 else { return false }
            if type == 203 { return true }
            guard rest.readableBytes >= 4 * (Int(words) + 1) else { return false }
            rest.moveReaderIndex(forwardBy: 4 * (Int(words) + 1))
        }
        return false
    }
}

/// The client ports of `transport: udp`: an RTP and an RTCP socket per
/// track, consecutive from an even port, as RFC 3550 pairs them. RTP from
/// anyone but the server (its address, and its port once SETUP named it) is
/// ignored and counted; of RTCP only a BYE is heeded (camflow times media
/// by RTP-Info, not sender reports). Packets wait in a bounded stream: past
/// `maxQueued` the newest are dropped, as a full socket buffer would.
final class CameraUDPPorts: Sendable {
    static let maxQueued = 1024
    static let packetCapacity = 4096

    let firstPort: Int
    let stream: AsyncStream<CameraMediaInput>
    let continuation: AsyncStream<CameraMediaInput>.Continuation
    private let channels: [any Channel]
    private let filter: SourceFilter

    private init(firstPort: Int, channels: [any Channel], filter: SourceFilter,
                 stream: AsyncStream<CameraMediaInput>, continuation: AsyncStream<CameraMediaInput>.Continuation) {
        self.firstPort = firstPort
        self.channels = channels
        self.filter = filter
        self.stream = stream
        self.continuation = continuation
    }

    /// Packets from elsewhere than the server, ignored.
    var strays: Int { filter.strays.load(ordering: .relaxed) }

    /// Binds 2 × `tracks` consecutive ports on `localHost`, trying a few random even starts.
    static func bind(tracks: Int, localHost: String) async throws -> CameraUDPPorts {
        let (stream, continuation) = AsyncStream.makeStream(of: CameraMediaInput.self, bufferingPolicy: .bufferingOldest(maxQueued))
        let filter = SourceFilter(tracks: tracks)
        var lastError: (any Error)?
        for _ in 0..<16 {
            let first = Int.random(in: 8192..<(65536 - 2 * tracks)) & ~1
            var bound: [any Channel] = []
            do {
                for index in 0..<(2 * tracks) {
                    let isRTP = index % 2 == 0
                    let track = index / 2
                    let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                        .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: packetCapacity))
                        .channelInitializer { channel in
                            channel.eventLoop.makeCompletedFuture {
                                let handler = DatagramHandler(track: track, isRTP: isRTP, filter: filter, continuation: continuation)
                                try channel.pipeline.syncOperations.addHandler(handler)
                            }
                        }
                        .bind(host: localHost, port: first + index).get()
                    bound.append(channel)
                }
                return CameraUDPPorts(firstPort: first, channels: bound, filter: filter, stream: stream, continuation: continuation)
            } catch {
                lastError = error
                for channel in bound { try? await channel.close() }
            }
        }
        continuation.finish()
        throw lastError ?? ChannelError.ioOnClosedChannel
    }

    /// The address of the server RTP may come from (nil: none yet, nothing is taken); ports are forgotten.
    func setServer(host: String?) { filter.setServer(host: host) }

    /// SETUP named the port the server sends track `track`'s RTP from.
    func setServerPort(_ port: Int?, track: Int) { filter.setServerPort(port, track: track) }

    func close() {
        continuation.finish()
        for channel in channels { channel.close(promise: nil) }
    }
}

/// Which datagrams are the server's. Read on the event loops, set by the session.
private final class SourceFilter: Sendable {
    let strays = Atomic<Int>(0)
    private let server: Mutex<(host: String?, ports: [Int?])>

    init(tracks: Int) {
        server = Mutex((nil, Array(repeating: nil, count: tracks)))
    }

    func setServer(host: String?) {
        server.withLock { $0 = (host, Array(repeating: nil, count: $0.ports.count)) }
    }

    func setServerPort(_ port: Int?, track: Int) {
        server.withLock { if $0.ports.indices.contains(track) { $0.ports[track] = port } }
    }

    func accepts(_ address: SocketAddress, track: Int, rtcp: Bool) -> Bool {
        let (host, port) = server.withLock { ($0.host, $0.ports.indices.contains(track) ? $0.ports[track] : nil) }
        guard let host, address.ipAddress == host else { return false }
        return port == nil || address.port == port.map { rtcp ? $0 + 1 : $0 }
    }
}

/// One socket's reads: RTP from the server goes to the session's stream; the rest is dropped.
private final class DatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let track: Int
    let isRTP: Bool
    let filter: SourceFilter
    let continuation: AsyncStream<CameraMediaInput>.Continuation

    init(track: Int, isRTP: Bool, filter: SourceFilter, continuation: AsyncStream<CameraMediaInput>.Continuation) {
        self.track = track
        self.isRTP = isRTP
        self.filter = filter
        self.continuation = continuation
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard filter.accepts(envelope.remoteAddress, track: track, rtcp: !isRTP) else {
            filter.strays.add(1, ordering: .relaxed)
            return
        }
        if isRTP {
            continuation.yield(.packet(track: track, envelope.data))
        } else if CameraMediaInput.isBye(envelope.data) {
            continuation.yield(.bye(track: track))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A datagram error (ICMP port unreachable, say) is no reason to stop listening.
    }
}
