public import Camflow

/// MQTT nodes: `mqtt-subscribe` (topics into event packets) and
/// `mqtt-publish` (packets as JSON, with Home Assistant discovery).
public enum MQTTPlugin: CamflowPlugin {
    public static let name = "mqtt"
    public static var nodeTypes: [NodeType] { [MQTTSubscribe.type, MQTTPublish.type] }
}
