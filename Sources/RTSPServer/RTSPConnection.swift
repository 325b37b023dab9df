import Camflow
import Logging
import NIOCore
import RTSPProtocol

/// One RTSP connection: reads requests with ``RTSPParser`` (its size
/// limits), answers them through ``RTSPServerSession``, and once playing
/// owns the client's ``ClientOutput`` and UDP sockets. Closes a connection
/// whose request does not complete within the header timeout; the server's
/// sweeper closes one silent for the session timeout.
final class RTSPConnection: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let server: RTSPMediaServer
    let handle: ConnectionHandle
    var parser: RTSPParser
    var session: RTSPServerSession
    var stream: String?
    var transports: [Int: TrackTransport] = [:]
    var output: ClientOutput?
    /// A request is being answered asynchronously (UDP sockets binding): later ones wait in the parser.
    var busy = false
    var closed = false
    /// Reading stopped until the client takes what it was sent.
    var readingPaused = false
    private var headerTimer: Scheduled<Void>?
    var interleavedReceived: UInt64 = 0
    /// What this client may still send as interleaved frames while playing.
    private var interleavedBudget = InterleavedBudget()

    init(server: RTSPMediaServer, handle: ConnectionHandle) {
        self.server = server
        self.handle = handle
        parser = RTSPParser()
        session = RTSPServerSession(timeout: Int(server.configuration.sessionTimeout.components.seconds))
    }

    var remoteAddress: SocketAddress? { handle.channel.remoteAddress }

    func handlerAdded(context: ChannelHandlerContext) {
        armHeaderTimer(context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        parser.append(unwrapInboundIn(data))
        process(context)
    }

    /// Answers every whole request the parser holds, unless one is in progress.
    func process(_ context: ChannelHandlerContext) {
        while !busy, !closed {
            // A client that does not read its answers is not read either (no growing pile of responses):
            // reading resumes when its socket drains.
            guard context.channel.isWritable else {
                if !readingPaused {
                    readingPaused = true
                    context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
                }
                break
            }
            let frame: RTSPFrame?
            do { frame = try parser.next() } catch {
                server.metrics.refused("bad-request")
                var answer = ByteBuffer()
                RTSPResponse(status: error.status, cseq: 0).write(into: &answer)
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(answer)).whenComplete { _ in channel.close(promise: nil) }
                closed = true
                return
            }
            guard let frame else { break }
            switch frame {
            case .request(let request):
                handle.touch(server.nanosecondsNow)
                answer(request, context)
            case .interleaved(let channel, let payload):
                // RFC 2326 §10.12: interleaved data belongs to a session that plays. Before PLAY (no request yet,
                // no login, only set up) a `$` frame is a protocol error: closing at once, without an answer, is
                // simpler than ignoring it while the header timer runs, and it gives a client that sends media
                // before PLAY (or an attacker holding connections open with a byte every few seconds) nothing.
                // One exception, because live555 players (VLC) may send a receiver report on the RTCP channel SETUP
                // just gave them before their PLAY goes out: it is dropped, and refreshes nothing.
                let rtcp = transports.values.contains { $0.rtcpChannel == channel }
                guard output != nil || rtcp else {
                    refuseInterleaved(context, reason: "interleaved-before-play",
                                      "closing an RTSP connection that sent interleaved data before PLAY")
                    return
                }
                let now = server.nanosecondsNow
                guard interleavedBudget.take(payload.readableBytes + 4, now: now) else {
                    refuseInterleaved(context, reason: "interleaved-flood",
                                      "closing an RTSP connection that sends more interleaved data than a player does")
                    return
                }
                interleavedReceived &+= 1
                // Receiver reports on a playing session's RTCP channels are RFC 2326's keep-alive; bytes on any
                // other channel are discarded and keep nothing alive.
                if rtcp, output != nil { handle.touch(now) }
            case .response:
                break
            }
        }
        if parser.isMidMessage { armHeaderTimer(context) } else { disarmHeaderTimer() }
    }

    private func armHeaderTimer(_ context: ChannelHandlerContext) {
        guard headerTimer == nil, !closed else { return }
        let timeout = TimeAmount.nanoseconds(Int64(server.configuration.headerTimeout.components.seconds) * 1_000_000_000
            + server.configuration.headerTimeout.components.attoseconds / 1_000_000_000)
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        headerTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            headerTimer = nil
            guard parser.isMidMessage || !hasSpoken else { return }
            server.metrics.refused("header-timeout")
            server.logger.debug("closing an RTSP connection whose request did not complete in time",
                                metadata: ["remote": "\(handle.group)"])
            loopContext.value.close(promise: nil)
        }
    }

    private var hasSpoken = false

    /// Closes the connection without an answer: nothing it sent asked a question.
    private func refuseInterleaved(_ context: ChannelHandlerContext, reason: String, _ message: Logger.Message) {
        server.metrics.refused(reason)
        server.logger.debug(message, metadata: ["remote": "\(handle.group)"])
        closed = true
        disarmTimerOnly()
        context.close(promise: nil)
    }

    private func disarmTimerOnly() {
        headerTimer?.cancel()
        headerTimer = nil
    }

    private func disarmHeaderTimer() {
        hasSpoken = true
        headerTimer?.cancel()
        headerTimer = nil
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            // Answers first, then media: a busy stream must not starve a client's keep-alives.
            if readingPaused {
                readingPaused = false
                context.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
                process(context)
            }
            output?.drain()
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        headerTimer?.cancel()
        stopPlaying()
        server.registry.release(handle)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// Ends playback and gives back the UDP ports (TEARDOWN, the connection closing).
    func stopPlaying() {
        if let output, let stream {
            server.hub.leave(stream: stream, client: output.id)
            output.stop(closeConnection: false)
            server.metrics.clientLeft(stream: stream, output)
        }
        output = nil
        for transport in transports.values {
            if case .udp(let pair) = transport {
                server.closeUDP(pair)
            }
        }
        transports = [:]
    }

    /// Writes an answer.
    func send(_ response: RTSPResponse, _ context: ChannelHandlerContext) {
        var buffer = ByteBuffer()
        response.write(into: &buffer)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }
}
