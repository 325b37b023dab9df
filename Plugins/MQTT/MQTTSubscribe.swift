import Camflow
import Foundation
import MQTTClient
import NIOCore

/// `mqtt-subscribe`: messages on MQTT topics as event packets.
struct MQTTSubscribe: Node {
    static let type = NodeType(
        name: "mqtt-subscribe",
        summary: "Receives MQTT messages (topics with + and # wildcards) as event packets.",
        details: """
            Each message becomes an event named 'event' (default 'mqtt') on the stream 'stream' (the \
            node id when unset), with the fields 'topic', 'retained' and, when the payload is UTF-8 \
            text, 'payload'; a payload that is a JSON object adds its string, number and boolean \
            members as fields of their own (topic, payload and retained keep their meaning). The raw \
            payload is the packet's payload. A message over 'max-payload' is dropped and counted. \
            The client reconnects on its own (1s, doubling up to 'reconnect-max') and subscribes \
            again; messages that arrive while the pipeline is behind wait in a buffer of 1024, the \
            oldest going first.
            """,
        options: MQTTNodeOptions.specs() + [
            OptionSpec("topics", .list(.string), required: true, "Topic filters, such as instar/+/status/alarm/# ."),
            OptionSpec("qos", .integer, default: "0", min: "0", max: "2", "QoS of the subscriptions."),
            OptionSpec("stream", .string, "Stream name of the events; the node id when unset."),
            OptionSpec("event", .string, default: "mqtt", "Name of the events."),
            OptionSpec("max-payload", .size, default: "64KiB", min: "1", max: "16MiB", "Largest payload accepted."),
        ],
        accepts: [],
        emits: .kinds(.event),
        make: { options in
            guard var configuration = try MQTTNodeOptions.configuration(options) else {
                throw options.error("needs a broker", option: "broker")
            }
            configuration.subscriptions = try options.stringList("topics")
            guard !configuration.subscriptions.isEmpty else { throw options.error("expected at least one topic filter", option: "topics") }
            for filter in configuration.subscriptions {
                if let problem = MQTTTopicRules.filterProblem(filter) {
                    throw options.error("'\(UntrustedText.printable(filter))': \(problem)", option: "topics")
                }
            }
            configuration.subscriptionQoS = Int32(try options.integer("qos"))
            configuration.maxPayload = try options.size("max-payload")
            return MQTTSubscribe(configuration: configuration, stream: try options.ifSet("stream", options.string) ?? options.nodeID,
                                 eventName: try options.string("event"), maxPayload: try options.size("max-payload"))
        })

    let configuration: MQTTClient.Configuration
    let stream: String
    let eventName: String
    let maxPayload: Int

    func run(_ context: NodeContext) async throws {
        let client = try MQTTClient(configuration, logger: context.logger, clock: context.clock)
        defer { client.stop() }
        try client.start()
        var sequence: UInt64 = 0
        var warnedSize = false
        for await message in client.messages {
            guard message.payload.readableBytes <= maxPayload else {
                context.stats.countDropped()
                if !warnedSize {
                    warnedSize = true
                    context.logger.warning("dropping MQTT messages over \(maxPayload) bytes (first on '\(UntrustedText.printable(message.topic))')")
                }
                continue
            }
            var packet = Packet.event(Event(eventName, Self.fields(of: message)), stream: stream, sequence: sequence)
            packet.payload = message.payload
            sequence += 1
            await context.emit(packet)
        }
    }

    /// topic, retained, payload (as text, up to 4 KiB) and a JSON object's
    /// scalar members, within the limits camflow's own ZeroMQ input sets for
    /// event fields, so what this emits can travel on.
    static func fields(of message: MQTTClient.Message) -> [(key: String, value: EventValue)] {
        var fields: [(key: String, value: EventValue)] = [("topic", .string(message.topic)), ("retained", .bool(message.retain))]
        guard let text = message.payload.getString(at: message.payload.readerIndex, length: message.payload.readableBytes),
              text.utf8.count == message.payload.readableBytes else { return fields }
        if text.utf8.count <= PacketHeader.Limits.fieldBytes { fields.append(("payload", .string(text))) }
        if text.first == "{", let members = EventValue.scalarMembers(ofJSONObject: message.payload) {
            for (key, value) in members where fields.count < PacketHeader.Limits.eventFields {
                guard !["topic", "payload", "retained"].contains(key), Self.isFieldName(key) else { continue }
                if case .string(let string) = value, string.utf8.count > PacketHeader.Limits.fieldBytes { continue }
                fields.append((key, value))
            }
        }
        return fields
    }

    /// 1 to 256 bytes, no control characters: a name the ZeroMQ header accepts.
    static func isFieldName(_ key: String) -> Bool {
        (1...PacketHeader.Limits.nameBytes).contains(key.utf8.count) && !key.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
    }
}
