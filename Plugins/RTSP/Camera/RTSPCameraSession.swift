import Camflow
import NIOCore
import NIOPosix
import RTSPProtocol
import Synchronization

/// Why a connection ended early: what the node logs and sends as the
/// `disconnected` event's reason.
struct CameraSessionError: Error, CustomStringConvertible {
    var description: String
    var unauthorized = false
    init(_ description: String, unauthorized: Bool = false) {
        self.description = description
        self.unauthorized = unauthorized
    }
}

extension RTSPCamera {
    typealias Connection = NIOAsyncChannel<ByteBuffer, ByteBuffer>

    /// One session, from connect to close, across redirects. Never throws: how it ended is the result.
    func session(_ context: NodeContext, counters: CameraCounters, discontinuity: Bool) async -> SessionEnd {
        var target = url
        var ports: CameraUDPPorts?
        if udp {
            do {
                // Ports for up to four tracks (video, audio and a spare pair each), bound before the first SETUP names them.
                ports = try await CameraUDPPorts.bind(tracks: 4, localHost: url.host.contains(":") ? "::" : "0.0.0.0")
            } catch {
                return .ended(reason: "cannot bind UDP ports for RTP: \(error)", deliveredMedia: false)
            }
        }
        defer { ports?.close() }
        var client = RTSPClientSession(url: url.requestURL, username: username, password: password,
                                       transport: ports.map { .udp(firstClientPort: $0.firstPort) } ?? .tcp)
        while true {
            let outcome: ConnectionOutcome
            do {
                outcome = try await connection(to: target, client: client, ports: ports, context,
                                               counters: counters, discontinuity: discontinuity)
            } catch let error as CameraSessionError {
                if Task.isCancelled { return .stopped }
                return error.unauthorized ? .authenticationFailed(status: 401, scheme: "RTSP") : .ended(reason: error.description, deliveredMedia: false)
            } catch {
                if Task.isCancelled { return .stopped }
                return .ended(reason: "\(target): \(error)", deliveredMedia: false)
            }
            switch outcome {
            case .ended(let end):
                return end
            case .redirect(let location, let state):
                let next: CameraURL
                do {
                    next = try target.redirected(to: location)
                } catch {
                    return .ended(reason: "a redirect to an unusable URL: \(error.reason)", deliveredMedia: false)
                }
                if username != nil, next.host.lowercased() != target.host.lowercased() {
                    // The credentials are for this camera only.
                    return .ended(reason: "a redirect to another host (\(next.host)) refused while credentials are set", deliveredMedia: false)
                }
                context.logger.info("camera \(target) redirects to \(next)")
                target = next
                client = state
            }
        }
    }

    enum ConnectionOutcome {
        case ended(SessionEnd)
        /// Connect again there; the client state machine carries its redirect count.
        case redirect(String, RTSPClientSession)
    }

    private func connection(to target: CameraURL, client: RTSPClientSession, ports: CameraUDPPorts?, _ context: NodeContext,
                            counters: CameraCounters, discontinuity: Bool) async throws -> ConnectionOutcome {
        let channel: Connection
        // The socket, as soon as it exists: a stop closes it, so it need not wait out the connect timeout.
        let opened = Mutex<(any Channel)?>(nil)
        do {
            channel = try await withTaskCancellationHandler {
                let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .connectTimeout(.nanoseconds(connectTimeout.nanoseconds))
                    .channelOption(.socketOption(.tcp_nodelay), value: 1)
                let wrap: @Sendable (any Channel) -> EventLoopFuture<Connection> = { channel in
                    opened.withLock { $0 = channel }
                    return channel.eventLoop.makeCompletedFuture {
                        // A small inbound buffer: demand, not the socket, sets the pace (TCP flow control).
                        try Connection(wrappingChannelSynchronously: channel,
                                       configuration: .init(backPressureStrategy: .init(lowWatermark: 2, highWatermark: 8)))
                    }
                }
                // An address (the usual camera URL) is connected to directly, without a getaddrinfo
                // call on a dispatch queue; only a name needs one.
                if let address = try? SocketAddress(ipAddress: target.host, port: target.port) {
                    return try await bootstrap.connect(to: address, channelInitializer: wrap)
                }
                return try await bootstrap.connect(host: target.host, port: target.port, channelInitializer: wrap)
            } onCancel: {
                opened.withLock { $0 }?.close(promise: nil)
            }
        } catch {
            throw CameraSessionError("cannot connect to \(target): \(error)")
        }
        // RTP over UDP is taken from the address this connection reached only.
        ports?.setServer(host: channel.channel.remoteAddress?.ipAddress)
        let state = CameraSessionState(clock: context.clock, client: client)
        let raw = channel.channel
        return try await withTaskCancellationHandler {
            try await channel.executeThenClose { inbound, outbound in
                try await withThrowingTaskGroup(of: ConnectionOutcome?.self) { group in
                    group.addTask {
                        try await watchdog(state: state, outbound: outbound, clock: context.clock)
                    }
                    group.addTask {
                        var reader = CameraReader(camera: self, target: target, state: state, outbound: outbound, ports: ports,
                                                  counters: counters, discontinuity: discontinuity, context: context)
                        return try await reader.run(inbound)
                    }
                    if let ports {
                        group.addTask {
                            var pump = CameraMediaPump(camera: self, counters: counters, state: state,
                                                       discontinuity: discontinuity, context: context)
                            for await input in ports.stream {
                                await pump.take(input)
                            }
                            return nil
                        }
                    }
                    let end = try await group.next() ?? nil
                    group.cancelAll()
                    if Task.isCancelled { return .ended(.stopped) }
                    return end ?? .ended(.ended(reason: "the connection ended", deliveredMedia: state.deliveredMedia))
                }
            }
        } onCancel: {
            // Stop: TEARDOWN, then close; the read loop ends with the connection.
            var random = SystemRandomNumberGenerator()
            if let teardown = state.client.withLock({ $0.teardown(random: &random) }) {
                raw.writeAndFlush(teardown.bytes).whenComplete { _ in raw.close(promise: nil) }
            } else {
                raw.close(promise: nil)
            }
        }
    }

    /// Ends the session when an answer of the handshake or, once playing,
    /// media is overdue, and sends keep-alives at half the session timeout.
    /// Sleeps until the earliest deadline; whatever moved meanwhile only
    /// re-arms the wait.
    private func watchdog(state: CameraSessionState, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
                          clock: any PipelineClock) async throws -> ConnectionOutcome? {
        let handshake = try await withThrowingTaskGroup(of: ConnectionOutcome?.self) { group in
            group.addTask {
                await state.playingSignal.wait()
                return nil
            }
            group.addTask { try await handshakeDeadline(state: state, clock: clock) }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
        if let handshake { return handshake }
        while true {
            let now = clock.now
            let idleAt = state.lastMedia.advanced(by: idleTimeout)
            if now >= idleAt {
                return .ended(.ended(reason: "no media for \(idleTimeout.shortDescription) (idle timeout)",
                                     deliveredMedia: state.deliveredMedia))
            }
            let due = state.client.withLock { $0.keepAliveDue(after: state.lastSentOffset) }
            let keepAliveAt = state.lastSent.advanced(by: due - state.lastSentOffset)
            if now >= keepAliveAt {
                var random = SystemRandomNumberGenerator()
                if case .send(let request) = state.client.withLock({ $0.keepAlive(random: &random) }) {
                    try await outbound.write(request.bytes)
                    state.sent(request, awaitAnswer: false)
                }
                continue
            }
            try await clock.sleep(until: min(idleAt, keepAliveAt))
        }
    }

    /// Returns an end when a request of the handshake goes unanswered for
    /// `response-timeout` (a server trickling its headers included).
    private func handshakeDeadline(state: CameraSessionState, clock: any PipelineClock) async throws -> ConnectionOutcome? {
        while true {
            let now = clock.now
            guard let (method, since) = state.awaited else {
                try await clock.sleep(until: now.advanced(by: responseTimeout))
                continue
            }
            let deadline = since.advanced(by: responseTimeout)
            if now >= deadline {
                return .ended(.ended(reason: "no answer to \(method) within \(responseTimeout.shortDescription) (response timeout)",
                                     deliveredMedia: state.deliveredMedia))
            }
            try await clock.sleep(until: deadline)
        }
    }
}
