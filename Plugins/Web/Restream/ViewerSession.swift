import Camflow
import HummingbirdWebSocket
import InstarProtocol
import Logging
import NIOCore
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

    private enum End: Sendable { case clientClosed, idle, streamEnded }

    func serve(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter,
               stream: String?, remote: String) async {
        let id = hub.attach(stream: stream, remote: remote)
        defer { hub.detach(id) }
        logger.info("viewer \(id) connected from \(remote)\(stream.map { " for stream '\($0)'" } ?? "")")
        let lastHeard = LastHeard()
        let end: End? = await withTaskGroup(of: End?.self) { group in
            group.addTask {
                while let item = await hub.next(id) {
                    do {
                        switch item {
                        case .text(let text): try await outbound.write(.text(text))
                        case .initSegment(let buffer), .fragment(let buffer, _): try await outbound.write(.binary(buffer))
                        }
                    } catch {
                        return .clientClosed
                    }
                    hub.sent(item, to: id)
                }
                return Task.isCancelled ? nil : .streamEnded
            }
            group.addTask {
                do {
                    for try await message in inbound.messages(maxSize: 1 << 16) {
                        lastHeard.now()
                        guard case .text(let text) = message else { continue }
                        handle(text, viewer: id)
                    }
                } catch {}
                return Task.isCancelled ? nil : .clientClosed
            }
            group.addTask {
                while true {
                    let silent = Duration.nanoseconds(Self.now() - lastHeard.instant.load(ordering: .relaxed))
                    if silent >= idleTimeout { return .idle }
                    do { try await Task.sleep(for: idleTimeout - silent) } catch { return nil }
                }
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
            hub.send(text: "error: unknown command '\(text.prefix(100))'", to: id)
        }
    }

    fileprivate static func now() -> Int64 { Int64(clamping: MonotonicClock.now()) }
}

/// When the client last sent anything, shared by its reader and the idle watch.
private final class LastHeard: Sendable {
    let instant = Atomic<Int64>(ViewerSession.now())
    func now() { instant.store(ViewerSession.now(), ordering: .relaxed) }
}

