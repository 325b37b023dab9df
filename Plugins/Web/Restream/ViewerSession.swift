import Camflow
import HummingbirdWebSocket
import InstarProtocol
import ISOBMFF
import Logging
import NIOCore
import NIOWebSocket
import Synchronization

/// One WebSocket viewer speaking the camera's protocol (``CameraCommand``):
/// `livestream` or `livestream/<n>` starts the stream (camflow serves the
/// same stream on every channel), `stop` stops it, `keep-alive` is
/// accepted, anything else gets `error: ...`, and a client silent for
/// `idleTimeout` is closed, as the camera does.
struct ViewerSession: Sendable {
    let hub: RestreamHub
    let idleTimeout: Duration
    let logger: Logger
    /// The pipeline's clock: the idle timeout and the message budget run on it.
    var clock: any PipelineClock = SystemClock()

    private enum End: Sendable { case clientClosed, idle, streamEnded, flooded }

    /// - Parameter eventLoop: the connection's loop, which writes what `outbound` is given: a fragment's
    ///   delivery time is taken there, once the write before it reached the socket.
    func serve(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter,
               stream: String?, remote: String, eventLoop: (any EventLoop)? = nil) async {
        // No stream has a longer name (the packet header's limit): such a path names none, and is not kept.
        if let stream, stream.utf8.count > PacketHeader.Limits.nameBytes {
            logger.notice("refused a viewer from \(remote): a stream name of \(stream.utf8.count) bytes")
            try? await outbound.write(.text("error: a stream name has at most \(PacketHeader.Limits.nameBytes) bytes"))
            try? await outbound.close(.policyViolation, reason: "stream name too long")
            return
        }
        let id = hub.attach(stream: stream, remote: remote)
        defer { hub.detach(id) }
        // The name comes from the client's path: printed escaped, so it cannot forge log lines.
        logger.info("viewer \(id) connected from \(remote)\(stream.map { " for stream '\(UntrustedText.printable($0, limit: 64))'" } ?? "")")
        let lastHeard = SilenceWatch(timeout: idleTimeout, clock: clock)
        let clock = self.clock
        let origin = clock.now
        let end: End? = await withTaskGroup(of: End?.self) { group in
            group.addTask {
                // The viewer's own timeline from 0, as a camera starts one for every client:
                // a page written for the camera appends and plays without ever seeking.
                var timeline = FragmentRebase()
                while let item = await hub.next(id) {
                    do {
                        switch item {
                        case .text(let text): try await outbound.write(.text(text))
                        case .initSegment(let buffer):
                            timeline.restart(initSegment: buffer)
                            try await outbound.write(.binary(buffer))
                        case .fragment(let buffer, _, _):
                            if let rebased = timeline.rebase(buffer) {
                                // One frame whose payload is the new moof then the shared mdat:
                                // NIO writes extension data and data back to back, so the media is not copied.
                                try await outbound.write(.custom(WebSocketFrame(fin: true, opcode: .binary, data: rebased.rest,
                                                                                extensionData: rebased.moof)))
                            } else {
                                try await outbound.write(.binary(buffer))
                            }
                        }
                    } catch {
                        return .clientClosed
                    }
                    hub.sent(item, to: id)
                    if case .fragment(_, _, let receivedAt) = item, receivedAt != 0 {
                        // The writer hands the frame to the loop, which writes and flushes it in order:
                        // a task queued behind it runs once the bytes went to the socket.
                        if let eventLoop {
                            eventLoop.execute { hub.delivered(since: receivedAt) }
                        } else {
                            hub.delivered(since: receivedAt)
                        }
                    }
                }
                return Task.isCancelled ? nil : .streamEnded
            }
            group.addTask {
                // A camera client sends a keep-alive every few seconds; each message costs the
                // server tens of microseconds, so one that sends thousands a second is closed.
                var budget = MessageBudget()
                do {
                    for try await message in inbound.messages(maxSize: 1 << 16) {
                        lastHeard.heard()
                        guard budget.take(at: origin.duration(to: clock.now).nanoseconds) else { return .flooded }
                        guard case .text(let text) = message else { continue }
                        handle(text, viewer: id)
                    }
                } catch {}
                return Task.isCancelled ? nil : .clientClosed
            }
            group.addTask {
                do { try await lastHeard.waitForSilence() } catch { return nil }
                return .idle
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        switch end {
        case .idle:
            logger.info("viewer \(id) closed: no message for \(idleTimeout.shortDescription)")
            try? await outbound.close(.normalClosure, reason: "idle")
        case .streamEnded:
            logger.info("viewer \(id) closed: the stream ended")
            try? await outbound.close(.goingAway, reason: "stream ended")
        case .flooded:
            logger.notice("viewer \(id) closed: more than \(MessageBudget.perSecond) messages a second")
            try? await outbound.close(.policyViolation, reason: "too many messages")
        case .clientClosed, nil:
            logger.info("viewer \(id) disconnected")
        }
    }

    private func handle(_ text: String, viewer id: Int) {
        switch CameraCommand(text) {
        case .startLivestream(let channel):
            if let channel, !CameraCommand.channels.contains(channel) {
                hub.send(text: "error: no channel \(channel); use 11, 12 or 13", to: id)
            } else if let error = hub.start(id) {
                hub.send(text: error, to: id)
            }
        case .stop:
            hub.stop(id)
        case .keepAlive:
            break
        case nil:
            // At most 100 characters: each answer is queued until read, so it must not echo 64 KiB.
            hub.send(text: "error: unknown command '\(UntrustedText.printable(text, limit: 100))'", to: id)
        }
    }
}

/// When a client last sent anything, shared by its reader and the idle
/// watch, and the wait for it to have been silent for `timeout`.
final class SilenceWatch: Sendable {
    let timeout: Duration
    private let clock: any PipelineClock
    private let last: Mutex<ContinuousClock.Instant>

    init(timeout: Duration, clock: any PipelineClock) {
        self.timeout = timeout
        self.clock = clock
        last = Mutex(clock.now)
    }

    /// The client said something: the silence starts again.
    func heard() {
        let now = clock.now
        last.withLock { $0 = now }
    }

    /// Returns once the client has said nothing for `timeout`; throws
    /// `CancellationError` when the task is cancelled first. Sleeps until
    /// the deadline; a message heard meanwhile moved it, so waking before
    /// it only re-arms the wait for the time left.
    func waitForSilence() async throws {
        while true {
            let deadline = last.withLock { $0 }.advanced(by: timeout)
            if clock.now >= deadline { return }
            try await clock.sleep(until: deadline)
        }
    }
}

/// How many messages a viewer may send: `burst` at once, then `perSecond`
/// (a token bucket). A value type with no clock of its own, tested alone.
public struct MessageBudget: Sendable {
    public static let perSecond = 50
    public static let burst = 200
    private var tokens = Double(burst)
    private var last: Int64?

    public init() {}

    /// Takes one message at `now` (monotonic nanoseconds); false when over the budget.
    public mutating func take(at now: Int64) -> Bool {
        if let last {
            let elapsed = Double(max(0, now - last)) / 1e9
            tokens = min(Double(Self.burst), tokens + elapsed * Double(Self.perSecond))
        }
        last = now
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
