import Camflow
import NIOCore
import RTSPProtocol
import Synchronization

/// What a session's reader and watchdog share: the RTSP client state
/// machine (both send requests: the reader the handshake, the watchdog the
/// keep-alives) and the times that decide a timeout, read from the
/// pipeline's clock. Times are atomics of nanoseconds since the session
/// began: the reader stores one per packet.
final class CameraSessionState: Sendable {
    private let clock: any PipelineClock
    private let origin: ContinuousClock.Instant
    let client: Mutex<RTSPClientSession>
    private let lastMediaAt = Atomic<Int64>(0)
    private let lastSentAt = Atomic<Int64>(0)
    /// When the request awaiting its answer was sent; -1: none awaited.
    private let awaitingSince = Atomic<Int64>(-1)
    private let awaitedMethod = Mutex<String>("")
    private let anyMedia = Atomic<Bool>(false)
    /// Fired when PLAY is answered: the watchdog turns from answers to media.
    let playingSignal = OneShotSignal()

    init(clock: any PipelineClock, client: RTSPClientSession) {
        self.clock = clock
        origin = clock.now
        self.client = Mutex(client)
    }

    var lastMedia: ContinuousClock.Instant { instant(lastMediaAt) }
    var lastSent: ContinuousClock.Instant { instant(lastSentAt) }
    /// Since the session began, as the client state machine counts keep-alives.
    var lastSentOffset: Duration { .nanoseconds(lastSentAt.load(ordering: .relaxed)) }
    var deliveredMedia: Bool { anyMedia.load(ordering: .relaxed) }

    /// The request still unanswered and when it was sent.
    var awaited: (method: String, since: ContinuousClock.Instant)? {
        let since = awaitingSince.load(ordering: .relaxed)
        guard since >= 0 else { return nil }
        return (awaitedMethod.withLock { $0 }, origin.advanced(by: .nanoseconds(since)))
    }

    func media() {
        lastMediaAt.store(sinceOrigin(), ordering: .relaxed)
        anyMedia.store(true, ordering: .relaxed)
    }

    func sent(_ request: RTSPRequest, awaitAnswer: Bool) {
        let now = sinceOrigin()
        lastSentAt.store(now, ordering: .relaxed)
        if awaitAnswer {
            awaitedMethod.withLock { $0 = request.method.name }
            awaitingSince.store(now, ordering: .relaxed)
        }
    }

    func answered() { awaitingSince.store(-1, ordering: .relaxed) }

    func startedPlaying() {
        // The idle timeout counts from PLAY, not from the connect.
        lastMediaAt.store(sinceOrigin(), ordering: .relaxed)
        playingSignal.fire()
    }

    private func instant(_ value: borrowing Atomic<Int64>) -> ContinuousClock.Instant {
        origin.advanced(by: .nanoseconds(value.load(ordering: .relaxed)))
    }

    private func sinceOrigin() -> Int64 { origin.duration(to: clock.now).nanoseconds }
}
