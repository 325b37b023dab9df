import CZeroMQ
public import Camflow
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
    /// ports); `report` gets statistics every `interval` on `clock` and once at the end.
    public func run(interval: Duration?, clock: any PipelineClock = SystemClock(),
                    ready: @escaping @Sendable (_ frontends: [String], _ backends: [String]) -> Void,
                    report: @escaping @Sendable (Statistics, _ final: Bool) -> Void) async throws {
        let context = ZMQContext()
        // Both sides are CURVE servers; one ZAP handler on the context admits the listed keys.
        if let curve {
            let allowed = Set(curve.allowedClients.compactMap(CurveKey.decode))
            try await ZAPHandler.serving(context: context, allowed: allowed, logger: Logger(label: "camflow.broker")) {
                try await forward(context, secretKey: curve.secretKey, interval: interval, clock: clock, ready: ready, report: report)
            }
        } else {
            try await forward(context, secretKey: nil, interval: interval, clock: clock, ready: ready, report: report)
        }
        context.terminate()
    }

    /// Binds both sides, runs libzmq's proxy on a thread of its own until
    /// cancelled, then stops it and closes its sockets.
    private func forward(_ context: ZMQContext, secretKey: String?, interval: Duration?, clock: any PipelineClock,
                         ready: @Sendable ([String], [String]) -> Void,
                         report: @Sendable (Statistics, Bool) -> Void) async throws {
        let control = "inproc://camflow-broker-\(UUID().uuidString)"
        let link = LinkSettings(heartbeat: heartbeat, heartbeatTimeout: heartbeat * 3)
        let frontend = try ZMQSocket(.xsub, context: context)
        let backend = try ZMQSocket(.xpub, context: context)
        let steering = try ZMQSocket(.pair, context: context)
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
        let commands = try ZMQSocket(.pair, context: context)
        defer { commands.close() }
        try commands.connect(control)
        // The three sockets are the proxy thread's from here until it ends.
        nonisolated(unsafe) let sockets = (frontend, backend, steering)
        async let proxy: Void = BlockingIOThread.run(name: "zmq-broker") {
            defer {
                sockets.0.close()
                sockets.1.close()
                sockets.2.close()
            }
            // libzmq's own poll loop, until TERMINATE; a signal reaching this thread interrupts it, so it starts again.
            while LibZMQ.api.proxySteerable(sockets.0.handle, sockets.1.handle, nil, sockets.2.handle) != 0, errno == EINTR {}
        }
        ready(frontendNames, backendNames)
        // The proxy answers a command at once; the bound only guards against a proxy gone wrong.
        func statistics() async -> Statistics? {
            await BlockingIOThread.run(name: "zmq-broker-statistics") {
                guard (try? commands.send([ByteBuffer(string: "STATISTICS")])) == true,
                      let reply = try? commands.receive(timeout: .seconds(5)), reply.count == 8 else { return nil }
                let values = reply.map { buffer -> UInt64 in buffer.getInteger(at: buffer.readerIndex, endianness: .host) ?? 0 }
                return Statistics(frontendMessagesIn: values[0], frontendBytesIn: values[1], frontendMessagesOut: values[2],
                                  frontendBytesOut: values[3], backendMessagesIn: values[4], backendBytesIn: values[5],
                                  backendMessagesOut: values[6], backendBytesOut: values[7])
            }
        }
        if let interval {
            while (try? await clock.sleep(for: interval)) != nil {
                if let current = await statistics() { report(current, false) }
            }
        } else {
            // A signal never fired: returns when the task is cancelled.
            await OneShotSignal().wait()
        }
        if let current = await statistics() { report(current, true) }
        _ = try? commands.send([ByteBuffer(string: "TERMINATE")])
        await proxy
    }
}
