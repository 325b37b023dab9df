import Camflow
import InstarProtocol
import NIOCore
import NIOHTTP1
import Synchronization

/// When a client last said something.
final class ClientActivity: Sendable {
    private let clock: any PipelineClock
    private let time: Mutex<ContinuousClock.Instant>

    init(clock: any PipelineClock) {
        self.clock = clock
        time = Mutex(clock.now)
    }

    var last: ContinuousClock.Instant { time.withLock { $0 } }
    func heard() {
        let now = clock.now
        time.withLock { $0 = now }
    }
}

/// Which `livestream` command is current: a new one replaces the old, `stop` ends it.
final class StreamControl: Sendable {
    private let generation = Mutex<(current: Int, active: Bool)>((0, false))

    func start() -> Int {
        generation.withLock { state in
            state.current += 1
            state.active = true
            return state.current
        }
    }

    func stop() { generation.withLock { $0.active = false } }

    func isCurrent(_ value: Int) -> Bool { generation.withLock { $0.active && $0.current == value } }
}

/// Answers a request that was not upgraded, then closes: 404 off `/ws`,
/// 401 with a Basic challenge without the right credentials, 426 otherwise.
final class RefusalResponder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let admission: @Sendable (HTTPRequestHead) -> HTTPResponseStatus?

    init(admission: @escaping @Sendable (HTTPRequestHead) -> HTTPResponseStatus?) {
        self.admission = admission
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        HTTPRefusal.write(admission(head) ?? .upgradeRequired, realm: "INSTAR", version: head.version, on: context.channel)
    }
}
