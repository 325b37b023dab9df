import Camflow
import CZeroMQ
import Foundation
import NIOCore

/// Topic for a packet from a template: `{stream}` and `{kind}`, where the
/// kind of a `keyframe` or `stats` event is that name (`cam1/keyframe`),
/// and of other events `event`.
struct TopicTemplate: Sendable {
    let template: String

    func topic(for packet: Packet) -> String {
        topic(stream: packet.stream, kind: Self.kindName(packet))
    }

    func topic(stream: String, kind: String) -> String {
        template.replacingOccurrences(of: "{stream}", with: stream).replacingOccurrences(of: "{kind}", with: kind)
    }

    static func kindName(_ packet: Packet) -> String {
        if packet.kind == .event, let name = packet.event?.name, name == "keyframe" || name == "stats" { return name }
        return packet.kind.name
    }
}

/// A stream and kind name: what a topic depends on.
private struct TopicKey: Hashable {
    var stream: String
    var kind: String
}

/// `zmq-publish`: every packet as a three-frame ZeroMQ message (topic, JSON
/// header, payload) on a PUB (or, latching, XPUB) socket.
struct ZMQPublish: Node {
    static let type = NodeType(
        name: "zmq-publish",
        summary: "Publishes packets over ZeroMQ: topic, JSON header, payload; late joiners get the init segment.",
        details: """
            Each packet becomes a three-frame message: the topic ('{stream}/{kind}' by default: \
            cam1/init, cam1/fragment, cam1/frame, cam1/keyframe, cam1/stats, cam1/event), the JSON \
            header (stream, kind, sequence, codec, timescale, dts, pts, duration, keyframe, width, \
            height, track, track_kind, received_at_ns; events add event and fields), and the payload, handed to \
            libzmq without a copy. A slow or stuck subscriber never blocks the pipeline: at the \
            high-water mark messages to it are dropped and counted. With 'latch' (the default) the \
            socket is an XPUB and a new subscription that matches a stream's init topic gets that \
            stream's latest init segment again, so a late joiner decodes from the next keyframe \
            (subscribers already there receive it again too); init segments are latched for at most \
            'max-streams' streams, the one idle longest giving way. Subscribers should subscribe \
            with a trailing slash ('cam1/') so that cam1 does not match cam10. When a stream whose \
            media went out ends (the input ends, or a 'disconnected' event of its camera passes), a \
            'stream-ended' event (field 'reason': 'end of input' or 'disconnected') goes out on \
            '{stream}/event', whatever 'kinds' says, so a subscriber's decoder can give up the \
            pictures it holds back for B-frames.
            """,
        options: [
            OptionSpec("endpoint", .list(.string), required: true,
                       "ZeroMQ endpoints, such as tcp://127.0.0.1:5555 or tcp://*:5555 (tcp://127.0.0.1:* picks a port)."),
            OptionSpec("connect", .bool, default: "false", "Connect to the endpoints (a broker) instead of binding them."),
            OptionSpec("kinds", .list(.choice(PacketKind.allCases.map(\.name))), "Packet kinds to publish; all when unset."),
            OptionSpec("topic", .string, default: "{stream}/{kind}", "Topic template: {stream} and {kind}."),
            OptionSpec("sndhwm", .integer, default: "1000", min: "0", "Messages queued per subscriber before new ones are dropped."),
            OptionSpec("linger", .duration, default: "1s", "How long queued messages may still go out at shutdown."),
            OptionSpec("latch", .bool, default: "true", "Re-send a stream's init segment to each new matching subscription."),
            OptionSpec("wait-for-subscribers", .integer, default: "0", min: "0",
                       "Hold the first packet until this many subscriptions arrived (for batch jobs and tests)."),
            OptionSpec("wait-timeout", .duration, default: "30s", "Longest wait for 'wait-for-subscribers'."),
            .maxStreams(),
        ] + CurveSettings.optionSpecs(server: true) + LinkSettings.optionSpecs,
        accepts: .all,
        emits: .nothing,
        make: { options in try ZMQPublish(options) })

    let endpoints: [String]
    let connect: Bool
    let kinds: PacketKinds
    let topic: TopicTemplate
    let highWaterMark: Int32
    let linger: Duration
    let latch: Bool
    let waitForSubscribers: Int
    let waitTimeout: Duration
    let curve: CurveSettings?
    let link: LinkSettings
    let maxStreams: Int

    init(_ options: NodeOptions) throws {
        maxStreams = try options.maxStreams()
        endpoints = try options.stringList("endpoint")
        guard !endpoints.isEmpty else { throw options.error("expected at least one endpoint", option: "endpoint") }
        connect = try options.bool("connect")
        if let listed = try options.ifSet("kinds", options.stringList) {
            kinds = PacketKinds(listed.compactMap(PacketKind.init(name:)).map(PacketKinds.init))
        } else {
            kinds = .all
        }
        topic = TopicTemplate(template: try options.string("topic"))
        highWaterMark = Int32(clamping: try options.integer("sndhwm"))
        linger = try options.duration("linger")
        latch = try options.bool("latch")
        waitForSubscribers = try options.integer("wait-for-subscribers")
        waitTimeout = try options.duration("wait-timeout")
        curve = try CurveSettings.from(options)
        link = try LinkSettings.from(options)
    }

    func run(_ context: NodeContext) async throws {
        // XPUB hears subscriptions: needed for the latch and for waiting on subscribers.
        let useXPUB = latch || waitForSubscribers > 0
        // A context of its own: ending it waits until queued messages went out.
        let zmq = ZMQContext()
        let socket = try ZMQSocket(useXPUB ? .xpub : .pub, context: zmq)
        defer { socket.close() }
        try socket.set(ZMQ_SNDHWM, highWaterMark)
        try socket.set(ZMQ_LINGER, Int32(clamping: linger.nanoseconds / 1_000_000))
        if useXPUB { try socket.set(ZMQ_XPUB_VERBOSE, 1) }
        try link.apply(to: socket)
        // A CURVE server admits clients through a ZAP handler on this context, bound before the socket is.
        do {
            if case .server(let secret, let allowed)? = curve?.role {
                try await ZAPHandler.serving(context: zmq, allowed: allowed, logger: context.logger) {
                    try ZAPHandler.configureServer(socket, secretKey: secret)
                    try await publish(socket, zmq, context)
                    socket.close()
                }
            } else {
                try curve?.configureClient(socket)
                try await publish(socket, zmq, context)
            }
        } catch {
            socket.close()
            throw error
        }
        socket.close()
        // Ending the context waits until queued messages went out (or the linger time passed).
        await BlockingIOThread.run(name: "zmq-publish-linger") { zmq.terminate() }
    }

    private func publish(_ socket: ZMQSocket, _ zmq: ZMQContext, _ context: NodeContext) async throws {
        for endpoint in endpoints {
            if connect { try socket.connect(endpoint) } else { try socket.bind(endpoint) }
            context.logger.info("publishing on \(connect ? endpoint : socket.lastEndpoint)")
        }
        var publisher = Publisher(socket: socket, stats: context.stats, hearsSubscriptions: latch || waitForSubscribers > 0,
                                  latch: latch, maxStreams: maxStreams)
        if waitForSubscribers > 0 {
            publisher.subscriptions += try await Self.subscriptions(on: socket, in: zmq, atLeast: waitForSubscribers,
                                                                   until: context.clock.now + waitTimeout, clock: context.clock)
            if publisher.subscriptions < waitForSubscribers {
                context.logger.warning("only \(publisher.subscriptions) of \(waitForSubscribers) subscribers after \(waitTimeout.shortDescription); publishing anyway")
            }
        }
        // Per packet: a topic from the cache and a header in a reused buffer, no allocation.
        var topics: [TopicKey: (text: String, bytes: ByteBuffer)] = [:]
        var lastTopic: (key: TopicKey, topic: (text: String, bytes: ByteBuffer))?
        // Reading subscriptions costs a system call: at most once a millisecond (and before any init).
        var lastService = context.clock.now
        var ends = StreamEnds(capacity: maxStreams)
        for await packet in context.input {
            let now = context.clock.now
            if now - lastService > .milliseconds(1) || packet.kind == .initSegment {
                try publisher.serviceSubscriptions()
                lastService = now
            }
            let ended = packet.kind == .event ? ends.event(packet) : nil
            guard kinds.contains(packet.kind) else {
                if let ended { try publisher.publish(ended, topic: ByteBuffer(string: self.topic.topic(for: ended))) }
                continue
            }
            let kindName = TopicTemplate.kindName(packet)
            let topic: (text: String, bytes: ByteBuffer)
            // A run of packets of one stream and kind (the usual case) skips the hashing.
            if let last = lastTopic, last.key.stream == packet.stream, last.key.kind == kindName {
                topic = last.topic
            } else {
                let key = TopicKey(stream: packet.stream, kind: kindName)
                if let cached = topics[key] {
                    topic = cached
                } else {
                    let text = self.topic.topic(stream: key.stream, kind: key.kind)
                    topic = (text, ByteBuffer(string: text))
                    // A cache: streams come and go, so it starts over rather than grow without end.
                    if topics.count >= maxStreams * PacketKind.allCases.count * 2 { topics.removeAll(keepingCapacity: true) }
                    topics[key] = topic
                }
                lastTopic = (key, topic)
            }
            if packet.kind == .initSegment, let evicted = publisher.latched.put((topic.text, packet), for: packet.stream) {
                await context.reportEvicted(stream: evicted.stream, capacity: maxStreams, emitEvent: false)
            }
            try publisher.publish(packet, topic: topic.bytes)
            if packet.kind != .event { ends.published(packet) }
            if let ended { try publisher.publish(ended, topic: ByteBuffer(string: self.topic.topic(for: ended))) }
        }
        for ended in ends.endOfInput() { try publisher.publish(ended, topic: ByteBuffer(string: self.topic.topic(for: ended))) }
        context.logger.info("published \(publisher.sent) messages, \(publisher.dropped) refused")
    }

    /// Counts the subscriptions that reach the XPUB `socket` until there are
    /// `count`, the `deadline` passes on `clock` or the node is stopped. A
    /// thread waits for them in zmq_poll while this task waits on the clock;
    /// whichever ends first wakes the other. The socket is the thread's
    /// until it ends (awaiting its end is the barrier that hands it back).
    static func subscriptions(on socket: ZMQSocket, in zmq: ZMQContext, atLeast count: Int,
                              until deadline: ContinuousClock.Instant, clock: any PipelineClock) async throws -> Int {
        let wakeup = try ZMQWakeup(context: zmq)
        let threadDone = OneShotSignal()
        nonisolated(unsafe) let xpub = socket
        async let counted = BlockingIOThread.run(name: "zmq-publish-wait") { () throws -> Int in
            defer { threadDone.fire() }
            var poll = ZMQPollSet([wakeup.receiver, xpub])
            var subscriptions = 0
            while true {
                while let message = try xpub.receive() {
                    if Publisher.subscriptionPrefix(message) != nil { subscriptions += 1 }
                }
                if subscriptions >= count { return subscriptions }
                try poll.wait()
                if poll.hasMessage(0) {
                    // Woken: the deadline passed or the node stopped.
                    wakeup.drain()
                    return subscriptions
                }
            }
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await clock.sleep(until: deadline) }
            group.addTask { await threadDone.wait() }
            await group.next()
            group.cancelAll()
        }
        wakeup.wake()
        return try await counted
    }
}

/// Which streams had media published, and so are owed a `stream-ended`
/// event when they end: a subscriber's decoder holds pictures back for
/// B-frames and gives them up only when told nothing follows.
struct StreamEnds {
    struct Entry {
        var open: Bool
        /// After the last event seen on the stream: subscribers count an event topic's sequence numbers.
        var nextEventSequence: UInt64
    }

    private var table: StreamTable<Entry>
    /// The stream of the last media packet, known open: a run of packets skips the table.
    private var lastOpened: String?

    init(capacity: Int) { table = StreamTable(capacity: capacity) }

    mutating func published(_ packet: Packet) {
        guard packet.stream != lastOpened else { return }
        lastOpened = packet.stream
        var entry = table[packet.stream] ?? Entry(open: true, nextEventSequence: 0)
        entry.open = true
        _ = table.put(entry, for: packet.stream)
    }

    /// Notes an event on a known stream; the `stream-ended` event to publish
    /// after it when it is the camera's `disconnected`. A `stream-ended`
    /// from upstream (a relay) is passed on and not said again.
    mutating func event(_ packet: Packet) -> Packet? {
        guard var entry = table[packet.stream] else { return nil }
        entry.nextEventSequence = max(entry.nextEventSequence, packet.sequence &+ 1)
        let name = packet.event?.name
        let ends = entry.open && (name == "disconnected" || name == "stream-ended")
        if ends {
            entry.open = false
            if lastOpened == packet.stream { lastOpened = nil }
        }
        _ = table.put(entry, for: packet.stream)
        guard ends, name == "disconnected" else { return nil }
        return Self.ended(packet.stream, reason: "disconnected", sequence: entry.nextEventSequence)
    }

    /// The `stream-ended` events of every stream still open, as the input ends.
    mutating func endOfInput() -> [Packet] {
        let open = table.streams.compactMap { stream in table[stream].flatMap { $0.open ? (stream, $0) : nil } }
        table = StreamTable(capacity: table.capacity)
        lastOpened = nil
        return open.map { Self.ended($0.0, reason: "end of input", sequence: $0.1.nextEventSequence) }
    }

    static func ended(_ stream: String, reason: String, sequence: UInt64) -> Packet {
        .event(Event("stream-ended", [("reason", .string(reason))]), stream: stream, sequence: sequence)
    }
}

/// The sending side of `zmq-publish`: the socket, the latched init segments
/// and the counters, as one value the packet loop owns.
private struct Publisher {
    let socket: ZMQSocket
    let stats: NodeStats
    let hearsSubscriptions: Bool
    let latch: Bool
    var latched: StreamTable<(topic: String, packet: Packet)>
    var header = JSONObject()
    var subscriptions = 0
    var sent: UInt64 = 0
    var dropped: UInt64 = 0

    init(socket: ZMQSocket, stats: NodeStats, hearsSubscriptions: Bool, latch: Bool, maxStreams: Int) {
        self.socket = socket
        self.stats = stats
        self.hearsSubscriptions = hearsSubscriptions
        self.latch = latch
        self.latched = StreamTable(capacity: maxStreams)
    }

    /// Reads pending subscription messages; re-sends init segments they match.
    mutating func serviceSubscriptions() throws {
        guard hearsSubscriptions else { return }
        while let message = try socket.receive() {
            guard let prefix = Self.subscriptionPrefix(message) else { continue }
            subscriptions += 1
            guard latch else { continue }
            for stream in latched.streams {
                guard let entry = latched[stream], entry.topic.hasPrefix(prefix) else { continue }
                try publish(entry.packet, topic: ByteBuffer(string: entry.topic))
            }
        }
    }

    /// The topic prefix of an XPUB subscription message (a 1 byte, then the
    /// prefix); nil for an unsubscription or anything else.
    static func subscriptionPrefix(_ message: [ByteBuffer]) -> String? {
        guard let frame = message.first, frame.readableBytes >= 1,
              frame.getInteger(at: frame.readerIndex, as: UInt8.self) == 1 else { return nil }
        return frame.getString(at: frame.readerIndex + 1, length: frame.readableBytes - 1) ?? ""
    }

    mutating func publish(_ packet: Packet, topic: ByteBuffer) throws {
        header.reset()
        PacketHeader.write(packet, into: &header)
        if try socket.send(topic: topic, header: header.finish(), payload: packet.payload) {
            sent += 1
        } else {
            dropped += 1
            stats.countDropped()
        }
    }
}