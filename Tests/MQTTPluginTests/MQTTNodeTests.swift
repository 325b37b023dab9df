import Camflow
import CamflowTesting
import Foundation
import Logging
import MQTTClient
@testable import MQTTPlugin
import NIOCore
import Synchronization
import Testing

/// A source of fixed event packets.
private struct FixedEvents: Node {
    let packets: [Packet]
    func run(_ context: NodeContext) async throws {
        for packet in packets { await context.emit(packet) }
    }

    static func type(_ packets: [Packet]) -> NodeType {
        NodeType(name: "fixed-events", summary: "Fixed events.", accepts: [], emits: .kinds(.event)) { _ in FixedEvents(packets: packets) }
    }
}

@Suite(.serialized) struct MQTTNodeTests {
    @Test func mqttSubscribe_turnsMessagesIntoEventsWithTheirJSONMembers() async throws {
        try #require(MosquittoBroker.isInstalled, "needs Debian's mosquitto")
        let broker = try await MosquittoBroker()
        // Retained, and on the broker before the node subscribes (the sender hears it back): the node
        // gets it as a retained message when it subscribes.
        let sender = try await Listener(broker, id: "sender", subscribe: ["instar/#"])
        sender.client.publish(.init(topic: "instar/AABB/status/alarm/triggered", text: #"{"val":"3","extra":[1]}"#, qos: 1, retain: true))
        try await waitUntil("the retained message is on the broker", timeout: .seconds(20)) {
            sender.last("instar/AABB/status/alarm/triggered") != nil
        }
        let run = try await TestHarness(plugins: [MQTTPlugin.self]).run([
            NodeSpec(id: "alarms", type: "mqtt-subscribe", options: [
                "broker": .scalar(broker.url), "topics": .list(["instar/+/status/alarm/#"]), "stream": "cam1",
            ]),
        ], collect: ["alarms"]) { $0["alarms"]?.isEmpty == false }
        sender.stop()
        let event = try #require(run.packets["alarms"]?.first)
        #expect(event.stream == "cam1" && event.event?.name == "mqtt")
        #expect(event.event?["topic"] == .string("instar/AABB/status/alarm/triggered"))
        #expect(event.event?["val"] == .string("3") && event.event?["retained"] == .bool(true))
        #expect(event.event?["extra"] == nil, "arrays are passed over")
        #expect(String(buffer: event.payload) == #"{"val":"3","extra":[1]}"#)
    }

    @Test func mqttPublish_sendsEventsRetainedAndHomeAssistantDiscovery() async throws {
        try #require(MosquittoBroker.isInstalled, "needs Debian's mosquitto")
        let broker = try await MosquittoBroker()
        let listener = try await Listener(broker, id: "listener", subscribe: ["#"])
        let packets: [Packet] = [
            .event(Event("connected", [("url", .string("ws://cam/ws"))]), stream: "cam1"),
            .event(Event("alarm", [("source", .string("area1")), ("active", .bool(true))]), stream: "cam1", sequence: 1),
            .event(Event("stats", [("kind", .string("video")), ("fps", .double(25))]), stream: "cam1", sequence: 2),
            .event(Event("clip", [("path", .string("clips/cam1/a.mp4"))]), stream: "cam1", sequence: 3),
        ]
        _ = try await TestHarness(plugins: [MQTTPlugin.self], nodeTypes: [FixedEvents.type(packets)]).run([
            NodeSpec(id: "events", type: "fixed-events"),
            NodeSpec(id: "publish", type: "mqtt-publish", inputs: ["events"], options: [
                "broker": .scalar(broker.url), "home-assistant": "true",
            ]),
        ], collect: [])
        do {
            try await waitUntil("the clip event and the offline status arrive", timeout: .seconds(20)) {
                listener.last("camflow/cam1/clip") != nil && listener.last("camflow/publish/availability") == "offline"
            }
        } catch {
            Issue.record("received: \(listener.messages.map(\.topic)); broker log:\n\(broker.log)")
            throw error
        }
        let alarm = try #require(listener.last("camflow/cam1/alarm"))
        #expect(alarm.contains(#""event":"alarm""#) && alarm.contains(#""active":true"#))
        #expect(listener.last("camflow/cam1/connectivity") == "ON")
        #expect(listener.messages.contains { $0.topic == "camflow/publish/availability" && $0.text == "online" })
        let motion = try #require(listener.last("homeassistant/binary_sensor/camflow_publish_cam1/motion/config"))
        let config = try #require(JSONSerialization.jsonObject(with: Data(motion.utf8)) as? [String: Any])
        #expect(config["state_topic"] as? String == "camflow/cam1/alarm")
        #expect(config["availability_topic"] as? String == "camflow/publish/availability")
        #expect(config["device_class"] as? String == "motion")
        for sensor in ["sensor/camflow_publish_cam1/fps", "sensor/camflow_publish_cam1/bitrate", "sensor/camflow_publish_cam1/gop",
                       "sensor/camflow_publish_cam1/last_clip", "binary_sensor/camflow_publish_cam1/connectivity"] {
            #expect(listener.last("homeassistant/\(sensor)/config") != nil, "\(sensor)")
        }
        listener.stop()
        // A subscriber that comes later gets the retained alarm, clip and discovery at once.
        let late = try await Listener(broker, id: "late", subscribe: ["#"])
        try await waitUntil("retained messages arrive", timeout: .seconds(20)) {
            late.messages.contains { $0.topic == "camflow/cam1/clip" && $0.retained }
                && late.messages.contains { $0.topic.hasSuffix("/motion/config") && $0.retained }
        }
        late.stop()
    }
}

@Suite struct MQTTNamesTests {
    @Test func topicLevelsAndIdsStaySafeAndApart() {
        #expect(MQTTTopic.level("cam1") == "cam1")
        for hostile in ["cam/1", "cam+", "#", "/\u{301}", "a\u{0}b", ""] {
            let level = MQTTTopic.level(hostile)
            #expect(!level.unicodeScalars.contains { $0 == "/" || $0 == "+" || $0 == "#" || $0.value < 0x20 } && !level.isEmpty, "\(hostile)")
        }
        #expect(MQTTTopic.level("cam/1") != MQTTTopic.level("cam_1"))
        #expect(MQTTTopic.identifier("cam 1") != MQTTTopic.identifier("cam.1"))
        let a = HomeAssistantDiscovery(discoveryPrefix: "homeassistant", prefix: "camflow", node: "a_b").configs(stream: "c")
        let b = HomeAssistantDiscovery(discoveryPrefix: "homeassistant", prefix: "camflow", node: "a").configs(stream: "b_c")
        #expect(Set(a.map(\.topic)).isDisjoint(with: b.map(\.topic)))
    }

    @Test func subscribedPayloadsKeepToTheEventLimits() {
        var members = (0..<400).map { #""k\#($0)":1"# }
        members.append(#""\#u{0001}bad":"x""#)
        members.append(#""long":"\#(String(repeating: "x", count: 5000))""#)
        let payload = ByteBuffer(string: "{" + members.joined(separator: ",") + "}")
        let fields = MQTTSubscribe.fields(of: .init(topic: "t", payload: payload))
        #expect(fields.count <= 256)
        #expect(!fields.contains { $0.key == "payload" || $0.key == "long" || $0.key.hasPrefix("\u{1}") })
    }
}
