import CZeroMQ
import Foundation
import Logging
import NIOCore

/// An XSUB/XPUB forwarder (`zmq_proxy`) for many camflow publishers and many
/// subscribers across hosts: publishers connect to the frontend, subscribers
/// to the backend, and subscriptions flow upstream.
public struct ZMQBroker: Sendable {
    /// Message and byte counts of both sides, as libzmq's proxy keeps them.
    public struct Statistics: Sendable, Equatable, CustomStringConvertible {
        public var frontendMessagesIn: UInt64 = 0
        public var frontendBytesIn: UInt64 = 0
        public var frontendMessagesOut: UInt64 = 0
        public var frontendBytesOut: UInt64 = 0
        public var backendMessagesIn: UInt64 = 0
        public var backendBytesIn: UInt64 = 0
        public var backendMessagesOut: UInt64 = 0
        public var backendBytesOut: UInt64 = 0

        public var description: String {
            "published \(frontendMessagesIn) frames (\(frontendBytesIn) bytes) in, "
                + "forwarded \(backendMessagesOut) frames (\(backendBytesOut) bytes) out, "
                + "\(backendMessagesIn) subscription messages"
        }
    }

    public let frontends: [String]
    public let backends: [String]
    /// The broker's CURVE secret key and the public keys of the publishers
    /// and subscribers it admits; nil: no encryption.
    public let curve: (secretKey: String, allowedClients: [String])?
    /// How often each publisher and subscriber is pinged; one silent for
    /// three of these is dropped (a cut link), and its own socket reconnects.
    public let heartbeat: Duration

    public init(frontends: [String], backends: [String], curve: (secretKey: String, allowedClients: [String])? = nil,
                heartbeat: Duration = .seconds(1)) {
        self.frontends = frontends
        self.backends = backends
        self.curve = curve
        self.heartbeat = heartbeat
    }

    /// Forwards until cancelled. `ready` gets the bound endpoints (real
    /// ports); `report` gets statistics every `interval` and once at the end.
    public func run(interval: Duration?, ready: @escaping @Sendable (_ frontends: [String], _ backends: [String]) -> Void,
                    report: @escaping @Sendable (Statistics, _ final: Bool) -> Void) async throws {
        let context = ZMQContext()
        let control = "inproc://camflow-broker-\(UUID().uuidString)"
        // Both sides are CURVE servers; one ZAP handler on the context admits the listed keys.
        var zap: ZAPHandler?
        if let curve {
            let allowed = Set(curve.allowedClients.compactMap(CurveKey.decode))
            zap = try await ZAPHandler.start(context: context, allowed: allowed, logger: Logger(label: "camflow.broker"))
        }
        let secretKey = curve?.secretKey
        let (bound, boundContinuation) = AsyncStream<Result<([String], [String]), ZMQError>>.makeStream()
        let link = LinkSettings(heartbeat: heartbeat, heartbeatTimeout: heartbeat * 3)
        let proxy = Task.detached { [frontends, backends, secretKey, link] in
            try await ZMQThread.run("zmq-broker") {
                do throws(ZMQError) {
                    let frontend = try ZMQSocket(.xsub, context: context)
                    let backend = try ZMQSocket(.xpub, context: context)
                    let steering = try ZMQSocket(.pair, context: context)
                    defer {
                        frontend.close()
                        backend.close()
                        steering.close()
                    }
                    try steering.bind(control)
                    try link.apply(to: frontend)
                    try link.apply(to: backend)
                    // Every subscription goes upstream, a repeated one too: a publisher's latch
                    // then sends the init segment to a second subscriber of the same prefix.
                    try backend.set(ZMQ_XPUB_VERBOSE, 1)
                    if let secretKey {
                        try ZAPHandler.configureServer(frontend, secretKey: secretKey)
                        try ZAPHandler.configureServer(backend, secretKey: secretKey)
                    }
                    var frontendNames: [String] = []
                    var backendNames: [String] = []
                    for endpoint in frontends {
                        try frontend.bind(endpoint)
                        frontendNames.append(frontend.lastEndpoint)
                    }
                    for endpoint in backends {
                        try backend.bind(endpoint)
                        backendNames.append(backend.lastEndpoint)
                    }
                    boundContinuation.yield(.success((frontendNames, backendNames)))
                    boundContinuation.finish()
                    // Runs until TERMINATE; a signal reaching this thread interrupts it, so it starts again.
                    while LibZMQ.api.proxySteerable(frontend.handle, backend.handle, nil, steering.handle) != 0,
                          errno == EINTR {}
                } catch {
                    boundContinuation.yield(.failure(error))
                    boundContinuation.finish()
                }
            }
        }
        var results = bound.makeAsyncIterator()
        guard let result = await results.next() else { return }
        let frontendNames: [String], backendNames: [String]
        do {
            (frontendNames, backendNames) = try result.get()
        } catch {
            await zap?.stop()
            throw error
        }
        ready(frontendNames, backendNames)
        let commands = try ZMQSocket(.pair, context: context)
        try commands.connect(control)
        func statistics() throws -> Statistics? {
            guard try commands.send([ByteBuffer(string: "STATISTICS")]),
                  let reply = try commands.receive(timeout: .seconds(5)), reply.count == 8 else { return nil }
            let values = reply.map { buffer -> UInt64 in buffer.getInteger(at: buffer.readerIndex, endianness: .host) ?? 0 }
            return Statistics(frontendMessagesIn: values[0], frontendBytesIn: values[1], frontendMessagesOut: values[2],
                              frontendBytesOut: values[3], backendMessagesIn: values[4], backendBytesIn: values[5],
                              backendMessagesOut: values[6], backendBytesOut: values[7])
        }
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: interval ?? .seconds(3600))
            } catch {
                break
            }
            if interval != nil, let current = try statistics() { report(current, false) }
        }
        if let current = try statistics() { report(current, true) }
        _ = try commands.send([ByteBuffer(string: "TERMINATE")])
        commands.close()
        try await proxy.value
        await zap?.stop()
        context.terminate()
    }
}
