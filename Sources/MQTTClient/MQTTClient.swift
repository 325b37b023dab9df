public import Camflow
import CMosquitto
import Foundation
public import Logging
public import NIOCore
import Synchronization

/// A connection to an MQTT broker on a network thread of its own, which
/// connects, keeps the connection alive and reconnects with exponential
/// backoff whatever ended the connection; every (re)connection subscribes
/// the topics again and publishes the ``Configuration/online`` message.
///
/// With MQTT 5 (the default) the client announces ``Configuration/maximumPacketSize``
/// in its CONNECT, so the broker drops larger messages instead of sending
/// them; with 3.1.1 a larger message arrives whole and is dropped here.
///
/// Thread safety: libmosquitto is built thread-safe and told it is used from
/// several threads (its publish may be called from any thread and only
/// queues); the client's own state is behind a mutex.
public final class MQTTClient: @unchecked Sendable {
    /// One message, received or to publish.
    public struct Message: Sendable, Equatable {
        public var topic: String
        public var payload: ByteBuffer
        public var qos: Int32
        public var retain: Bool

        public init(topic: String, payload: ByteBuffer, qos: Int32 = 0, retain: Bool = false) {
            self.topic = topic
            self.payload = payload
            self.qos = qos
            self.retain = retain
        }

        public init(topic: String, text: String, qos: Int32 = 0, retain: Bool = false) {
            self.init(topic: topic, payload: ByteBuffer(string: text), qos: qos, retain: retain)
        }
    }

    /// The MQTT version spoken.
    public enum ProtocolVersion: String, Sendable, CaseIterable {
        /// The broker learns the largest packet this client takes and never sends a larger one.
        case v5 = "5"
        /// For brokers without MQTT 5: a message of any size arrives whole before it can be dropped.
        case v311 = "3.1.1"
    }

    /// How to reach and use the broker.
    public struct Configuration: Sendable {
        public var broker: BrokerURL
        /// Unique per broker: a second client with the same id makes the broker drop the first.
        public var clientID: String
        public var keepAlive: Duration = .seconds(30)
        /// The first and the longest wait before reconnecting (whole seconds, as libmosquitto counts).
        public var reconnectDelay: (first: Duration, max: Duration) = (.seconds(1), .seconds(30))
        /// PEM files for mqtts://: the CA (Debian's /etc/ssl/certs when unset), and a client certificate and key.
        public var caFile: String?
        public var certificateFile: String?
        public var keyFile: String?
        /// Sent by the broker when the connection is lost without a goodbye.
        public var will: Message?
        /// Published after every connection (availability "online").
        public var online: Message?
        /// Topic filters to subscribe, with wildcards.
        public var subscriptions: [String] = []
        public var subscriptionQoS: Int32 = 0
        /// QoS 1 and 2 messages kept while disconnected and sent on
        /// connection; beyond this they are dropped (QoS 0 ones always are).
        public var maxQueuedWhileDisconnected = 1000
        /// Received messages waiting for the reader; beyond this the oldest go.
        public var receiveBuffer = 1024
        /// Larger received payloads are dropped (by the broker with MQTT 5,
        /// else before they are copied), so the receive buffer holds at most
        /// `receiveBuffer` × this, and never more than 64 MiB.
        public var maxPayload = 1 << 20
        public var protocolVersion = ProtocolVersion.v5
        /// The Maximum Packet Size announced with MQTT 5: the payload limit
        /// and 4 KiB for the topic and properties, which real topics never need.
        public var maximumPacketSize: Int { min(maxPayload + Self.packetOverhead, 268_435_455) }
        static let packetOverhead = 4096

        public init(broker: BrokerURL, clientID: String) {
            self.broker = broker
            self.clientID = clientID
        }
    }

    /// A change of the connection, for logs and availability.
    public enum ConnectionEvent: Sendable, Equatable {
        case connected
        case disconnected(reason: String)
    }

    struct State {
        var connected = false
        /// Connected, and sending the online message and the outbox: what is
        /// published meanwhile waits its turn, so messages go out in order
        /// (an "offline" published as the node stops never overtakes "online").
        var flushing = false
        /// QoS 1 and 2 messages published while disconnected, sent on connection.
        var outbox: [Message] = []
        var lastFailure: String?
        var stopped = false
        /// Handed to libmosquitto and not yet sent (QoS 0) or acknowledged (QoS 1, 2).
        var unsent = 0
        /// ``start()`` started the network thread, which fires ``networkEnded`` as it ends.
        var networkStarted = false
        /// Failed connection attempts since the last connection, for the backoff.
        var failures = 0
        /// The end of the current attempt was already logged (a refusal, a lost connection).
        var reported = false
        /// Received messages dropped since the last warning, and when that was.
        var unreportedDrops = 0
        var lastDropWarning: ContinuousClock.Instant?
        /// Fired once nothing is unsent and the outbox is empty (``finish(last:linger:)`` waits on them).
        var drainWaiters: [OneShotSignal] = []

        /// The waiters to fire (after the lock) when nothing is left to send.
        mutating func takeDrainWaiters() -> [OneShotSignal] {
            guard !drainWaiters.isEmpty, unsent == 0, outbox.isEmpty else { return [] }
            defer { drainWaiters = [] }
            return drainWaiters
        }
    }

    /// libmosquitto's own interval for its housekeeping (keep-alive pings,
    /// retries) while nothing happens: its loop wakes at once for traffic,
    /// a publish from another thread and the goodbye ``stop(last:)`` queues.
    static let loopTimeout: Int32 = 1000
    /// Every received message held at once, at most (the buffer shrinks for large payloads).
    static let maxBufferedBytes = 64 << 20

    public let configuration: Configuration
    /// Messages on the subscribed topics, in arrival order.
    public let messages: AsyncStream<Message>
    /// Connections and losses, as they happen.
    public let connectionEvents: AsyncStream<ConnectionEvent>
    let messageSink: AsyncStream<Message>.Continuation
    let eventSink: AsyncStream<ConnectionEvent>.Continuation
    let logger: Logger
    let api: LibMosquitto.Functions
    let handle: LibMosquitto.Handle
    let state = Mutex(State())
    /// Where the client reads time and waits (the backoff, the linger).
    let clock: any PipelineClock
    /// Fired by ``stop(last:)``: cuts the reconnect backoff short.
    let stopSignal = OneShotSignal()
    /// Fired as the network thread lets go of the client.
    private let networkEnded = OneShotSignal()
    /// Received messages that wait for the reader at most: `receiveBuffer`,
    /// fewer when that many maximal payloads would exceed 64 MiB.
    public let bufferedMessages: Int
    /// Received messages dropped because the reader was behind.
    public var droppedReceived: Int { droppedReceivedCount.load(ordering: .relaxed) }
    /// Messages not published: disconnected beyond the queue, or refused.
    public var droppedSent: Int { droppedSentCount.load(ordering: .relaxed) }
    let droppedReceivedCount = Atomic<Int>(0)
    private let droppedSentCount = Atomic<Int>(0)

    /// Makes the client; nothing is sent before ``start()``.
    public init(_ configuration: Configuration, logger: Logger, clock: any PipelineClock = SystemClock()) throws(MQTTError) {
        let api = try LibMosquitto.loaded.get()
        self.api = api
        self.clock = clock
        self.configuration = configuration
        self.logger = logger
        // A retained flood of maximal payloads holds no more than maxBufferedBytes.
        let buffered = min(configuration.receiveBuffer, max(4, Self.maxBufferedBytes / max(1, configuration.maxPayload)))
        bufferedMessages = buffered
        (messages, messageSink) = AsyncStream.makeStream(of: Message.self, bufferingPolicy: .bufferingNewest(buffered))
        (connectionEvents, eventSink) = AsyncStream.makeStream(of: ConnectionEvent.self, bufferingPolicy: .bufferingNewest(64))
        guard let handle = api.new(configuration.clientID, true, nil) else {
            throw MQTTError("cannot make an MQTT client: \(LibMosquitto.describe(MOSQ_ERR_ERRNO.rawValue))")
        }
        self.handle = handle
        do {
            try configure()
        } catch {
            api.destroy(handle)
            throw error
        }
    }

    deinit {
        // Only after stop() joined the network thread (it held a reference until then).
        messageSink.finish()
        eventSink.finish()
        api.destroy(handle)
    }

    private func check(_ code: Int32, _ what: String) throws(MQTTError) {
        guard code == MOSQ_ERR_SUCCESS.rawValue else { throw MQTTError("\(what): \(LibMosquitto.describe(code))") }
    }

    private func configure() throws(MQTTError) {
        let broker = configuration.broker
        if let username = broker.username {
            try check(api.usernamePasswordSet(handle, username, broker.password), "MQTT username")
        }
        if broker.tls {
            let caPath: String? = configuration.caFile == nil ? "/etc/ssl/certs" : nil
            try check(api.tlsSet(handle, configuration.caFile, caPath, configuration.certificateFile, configuration.keyFile, nil),
                      "MQTT TLS files (ca-file, cert-file, key-file)")
        }
        if let will = configuration.will {
            let code = will.payload.withUnsafeReadableBytes { bytes in
                api.willSet(handle, will.topic, Int32(bytes.count), bytes.baseAddress, will.qos, will.retain)
            }
            try check(code, "MQTT last will")
        }
        let version = configuration.protocolVersion == .v5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311
        try check(api.intOption(handle, MOSQ_OPT_PROTOCOL_VERSION, version), "MQTT protocol version")
        // Publishing from the pipeline's threads only queues; the network thread writes.
        try check(api.threadedSet(handle, true), "MQTT threading")
    }

    /// Connects in the background: a broker that is down now is tried again
    /// with backoff, so this fails only for what no retry can mend.
    public func start() throws(MQTTError) {
        // The network thread holds the client until it ends: a callback never runs on a
        // freed client, and deinit never runs on that thread.
        let context = Unmanaged.passRetained(self).toOpaque()
        // The user data is set here, not at creation, so the callbacks find a fully made object.
        api.connectCallbackSet(handle) { _, object, code in
            object.map { Unmanaged<MQTTClient>.fromOpaque($0).takeUnretainedValue() }?.connected(code)
        }
        api.disconnectCallbackSet(handle) { _, object, code in
            object.map { Unmanaged<MQTTClient>.fromOpaque($0).takeUnretainedValue() }?.disconnected(code)
        }
        api.publishCallbackSet(handle) { _, object, _ in
            object.map { Unmanaged<MQTTClient>.fromOpaque($0).takeUnretainedValue() }?.sent()
        }
        api.messageCallbackSet(handle) { _, object, message in
            guard let message else { return }
            object.map { Unmanaged<MQTTClient>.fromOpaque($0).takeUnretainedValue() }?.received(message.pointee)
        }
        api.userDataSet(handle, context)
        let broker = configuration.broker
        if !broker.tls, broker.password != nil, !["127.0.0.1", "::1", "localhost"].contains(broker.host) {
            logger.warning("the password for \(broker) crosses the network in clear: use mqtts://")
        }
        state.withLock { $0.networkStarted = true }
        let retained = Unmanaged<MQTTClient>.fromOpaque(context)
        let ended = networkEnded
        // A thread of its own, not one of Swift's shared pool: connecting blocks (for as long as a
        // connection attempt to an unreachable broker takes, minutes). The task only awaits it.
        Task {
            await BlockingIOThread.run(name: "mqtt") { await retained.takeUnretainedValue().runNetwork() }
            // The client is let go first: whoever awaited the end may then find it freed.
            retained.release()
            ended.fire()
        }
    }

    var isStopped: Bool { state.withLock { $0.stopped } }

    /// Disconnects (after `last`, if given, is queued: an "offline" message,
    /// since a goodbye does not send the will) and lets the network thread
    /// end, at once: a backoff under way ends, the goodbye wakes the loop,
    /// and the thread lets the client go (after a connection attempt under
    /// way gives up, if one is).
    public func stop(last: Message? = nil) {
        let alreadyStopped = state.withLock { state in
            defer { state.stopped = true }
            return state.stopped
        }
        guard !alreadyStopped else { return }
        if let last { publish(last) }
        // Queued after `last`; its write wakes libmosquitto's loop on the network thread.
        _ = api.disconnect(handle)
        stopSignal.fire()
        messageSink.finish()
        eventSink.finish()
    }

    /// As ``stop(last:)``, but first gives what was published up to `linger`
    /// to reach the broker (connecting first if need be): a short pipeline's
    /// events are not lost to a connection still being made. Returns when
    /// the network thread has said goodbye and let the client go, or when
    /// `linger` has passed.
    public func finish(last: Message? = nil, linger: Duration) async {
        if let last { publish(last) }
        let deadline = clock.now + linger
        let drained = OneShotSignal()
        let waits = state.withLock { state in
            guard state.unsent > 0 || !state.outbox.isEmpty else { return false }
            state.drainWaiters.append(drained)
            return true
        }
        if waits { await wait(for: drained, until: deadline) }
        let started = state.withLock { $0.networkStarted }
        stop()
        if started { await wait(for: networkEnded, until: deadline) }
    }

    /// Returns when `signal` fires, `deadline` passes on the clock, or the task is cancelled.
    private func wait(for signal: OneShotSignal, until deadline: ContinuousClock.Instant) async {
        guard !signal.isFired else { return }
        let clock = self.clock
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await signal.wait() }
            group.addTask { try? await clock.sleep(until: deadline) }
            await group.next()
            group.cancelAll()
        }
    }

    /// libmosquitto sent (QoS 0) or had acknowledged (QoS 1, 2) a message.
    func sent() {
        let waiters = state.withLock { state in
            state.unsent = max(0, state.unsent - 1)
            return state.takeDrainWaiters()
        }
        for waiter in waiters { waiter.fire() }
    }

    /// Publishes `message`; false when it was dropped (disconnected with a
    /// full queue, QoS 0 while disconnected, or refused by libmosquitto).
    @discardableResult
    public func publish(_ message: Message) -> Bool {
        // C would read the topic only up to a U+0000 and publish to another one.
        guard !message.topic.utf8.contains(0) else {
            droppedSentCount.add(1, ordering: .relaxed)
            return false
        }
        let sendNow = state.withLock { state -> Bool? in
            if state.connected || state.stopped { return true }
            guard message.qos > 0 || state.flushing, state.outbox.count < configuration.maxQueuedWhileDisconnected else { return nil }
            state.outbox.append(message)
            return false
        }
        switch sendNow {
        case true?: return send(message)
        case false?: return true
        case nil:
            droppedSentCount.add(1, ordering: .relaxed)
            return false
        }
    }

    func send(_ message: Message) -> Bool {
        // Counted before the call: the network thread may report it sent before the call returns.
        state.withLock { $0.unsent += 1 }
        let code = message.payload.withUnsafeReadableBytes { bytes in
            api.publish(handle, nil, message.topic, Int32(clamping: bytes.count), bytes.baseAddress, message.qos, message.retain)
        }
        guard code == MOSQ_ERR_SUCCESS.rawValue else {
            droppedSentCount.add(1, ordering: .relaxed)
            sent()
            return false
        }
        return true
    }

    /// The loaded libmosquitto's version, or why it is missing.
    public static var libraryVersion: Result<String, MQTTError> {
        LibMosquitto.loaded.map { _ in LibMosquitto.version ?? "?" }
    }
}
