import Camflow
import MQTTClient
import NIOCore
import Synchronization

/// `mqtt-publish`: packets as JSON messages on `{prefix}/{stream}/{kind}`,
/// optionally announced to Home Assistant.
struct MQTTPublish: Node {
    static let type = NodeType(
        name: "mqtt-publish",
        summary: "Publishes packets as JSON on MQTT ({prefix}/{stream}/{kind}); Home Assistant discovery optional.",
        details: """
            Each packet's JSON header (as zmq-publish sends it; an event carries its name and \
            fields) is published to '{prefix}/{stream}/{kind}', where the kind of an event is its \
            name: camflow/cam1/alarm, camflow/cam1/clip, camflow/cam1/stats. Media payloads are \
            not sent. Events named in 'retain' are retained, so a subscriber that comes later \
            gets the last one at once. The node's availability is '{prefix}/{node}/availability': \
            'online' while connected, 'offline' when it stops or, through the broker's last will, \
            when the connection is lost. With 'home-assistant', each stream becomes a Home \
            Assistant device (retained discovery configs under 'discovery-prefix', sent again on \
            every reconnection) with a motion sensor from 'alarm' events, the camera connection \
            (from the camera's connected and disconnected events, published on \
            '{prefix}/{stream}/connectivity'), frame rate, bitrate and keyframe interval from \
            'stats', and the last clip's path from 'clip'. While the broker is unreachable, QoS 0 \
            messages are dropped and at most 1000 QoS 1 or 2 ones wait; the pipeline never does.
            """,
        options: MQTTNodeOptions.specs() + [
            OptionSpec("prefix", .string, default: "camflow", "First topic level."),
            OptionSpec("kinds", .list(.choice(PacketKind.allCases.map(\.name))), default: "event", "Packet kinds to publish."),
            OptionSpec("events", .list(.string), "Event names to publish; all when unset."),
            OptionSpec("retain", .list(.string), "Event names published retained; alarm, clip, stats and connectivity when unset."),
            OptionSpec("qos", .integer, default: "1", min: "0", max: "2", "QoS of the messages."),
            OptionSpec("home-assistant", .bool, default: "false", "Publish Home Assistant discovery configs for each stream."),
            OptionSpec("discovery-prefix", .string, default: "homeassistant", "Home Assistant's discovery prefix."),
            OptionSpec("linger", .duration, default: "2s", max: "1h", "How long messages may still go out (or wait for a connection) at the end."),
            .maxStreams(),
        ],
        accepts: .all,
        emits: .nothing,
        make: { options in try MQTTPublish(options) })

    let configuration: MQTTClient.Configuration
    let prefix: String
    let kinds: PacketKinds
    let events: Set<String>?
    let retained: Set<String>
    let qos: Int32
    let discovery: HomeAssistantDiscovery?
    let availabilityTopic: String
    let maxStreams: Int
    let linger: Duration

    init(_ options: NodeOptions) throws {
        guard var configuration = try MQTTNodeOptions.configuration(options) else {
            throw options.error("needs a broker", option: "broker")
        }
        prefix = try options.string("prefix")
        if let problem = MQTTTopicRules.nameProblem(prefix) { throw options.error("'\(UntrustedText.printable(prefix))': \(problem)", option: "prefix") }
        kinds = PacketKinds(try options.stringList("kinds").compactMap(PacketKind.init(name:)).map(PacketKinds.init))
        events = try options.ifSet("events", options.stringList).map(Set.init)
        retained = Set(try options.ifSet("retain", options.stringList) ?? ["alarm", "clip", "stats", "connectivity"])
        qos = Int32(try options.integer("qos"))
        maxStreams = try options.maxStreams()
        linger = try options.duration("linger")
        let discoveryPrefix = try options.string("discovery-prefix")
        if let problem = MQTTTopicRules.nameProblem(discoveryPrefix) {
            throw options.error("'\(UntrustedText.printable(discoveryPrefix))': \(problem)", option: "discovery-prefix")
        }
        let discovery = HomeAssistantDiscovery(discoveryPrefix: discoveryPrefix, prefix: prefix,
                                               node: options.nodeID)
        self.discovery = try options.bool("home-assistant") ? discovery : nil
        availabilityTopic = discovery.availabilityTopic
        configuration.will = .init(topic: availabilityTopic, text: "offline", qos: 1, retain: true)
        configuration.online = .init(topic: availabilityTopic, text: "online", qos: 1, retain: true)
        self.configuration = configuration
    }

    func run(_ context: NodeContext) async throws {
        let client = try MQTTClient(configuration, logger: context.logger, clock: context.clock)
        try client.start()
        let announced = Mutex(Set<String>())
        // A broker that restarted without persistence forgot the retained configs: they go again.
        let reannounce = Task { [discovery] in
            guard let discovery else { return }
            for await event in client.connectionEvents where event == .connected {
                for stream in announced.withLock({ $0 }) { Self.announce(stream, discovery, client) }
            }
        }
        for await packet in context.input {
            guard kinds.contains(packet.kind) else { continue }
            let name = packet.event?.name ?? packet.kind.name
            if packet.kind == .event, let events, !events.contains(name) { continue }
            if let discovery {
                let isNew = announced.withLock { streams in
                    guard !streams.contains(packet.stream), streams.count < maxStreams else { return false }
                    return streams.insert(packet.stream).inserted
                }
                if isNew { Self.announce(packet.stream, discovery, client) }
                if let connected = Self.connectivity(name) {
                    publish(client, context, topic: topic(packet.stream, "connectivity"), text: connected ? "ON" : "OFF",
                            retain: retained.contains("connectivity"))
                }
            }
            publish(client, context, topic: topic(packet.stream, name), text: PacketHeader.json(packet), retain: retained.contains(name))
        }
        reannounce.cancel()
        await client.finish(last: .init(topic: availabilityTopic, text: "offline", qos: 1, retain: true), linger: linger)
        if client.droppedSent > 0 { context.logger.warning("\(client.droppedSent) MQTT messages were not sent") }
    }

    private func topic(_ stream: String, _ kind: String) -> String {
        "\(prefix)/\(MQTTTopic.level(stream))/\(MQTTTopic.level(kind))"
    }

    private func publish(_ client: MQTTClient, _ context: NodeContext, topic: String, text: String, retain: Bool) {
        if !client.publish(.init(topic: topic, text: text, qos: qos, retain: retain)) { context.stats.countDropped() }
    }

    /// The camera's connection as its events tell it; nil for other events.
    static func connectivity(_ event: String) -> Bool? {
        switch event {
        case "connected": true
        case "disconnected", "auth-failed": false
        default: nil
        }
    }

    static func announce(_ stream: String, _ discovery: HomeAssistantDiscovery, _ client: MQTTClient) {
        for config in discovery.configs(stream: stream) {
            client.publish(.init(topic: config.topic, text: config.payload, qos: 1, retain: true))
        }
    }
}
