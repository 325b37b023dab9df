import Camflow

/// The retained MQTT discovery configs that make a camflow stream a Home
/// Assistant device: a motion binary sensor (from `alarm` events),
/// connectivity, frame rate, bitrate, GOP length and the last event clip,
/// all unavailable when camflow is not connected (its last will).
struct HomeAssistantDiscovery {
    /// Where Home Assistant listens for configs (its default: homeassistant).
    let discoveryPrefix: String
    /// Where camflow publishes its packets (`{prefix}/{stream}/{kind}`).
    let prefix: String
    /// The node publishing: part of every unique id, so two camflows do not collide.
    let node: String

    /// camflow's availability topic: "online" while connected, "offline" after.
    var availabilityTopic: String { "\(prefix)/\(MQTTTopic.level(node))/availability" }

    /// One config: its topic and JSON payload.
    struct Config: Equatable {
        var topic: String
        var payload: String
    }

    func configs(stream: String) -> [Config] {
        let level = MQTTTopic.level(stream)
        // '_' joins node and stream, so a name holding one could make ("a_b", "c") and ("a", "b_c")
        // one device: such pairs get a hash of both.
        var device = "camflow_\(MQTTTopic.identifier(node))_\(MQTTTopic.identifier(stream))"
        if node.contains("_") || stream.contains("_") { device += "-" + MQTTTopic.hash(node + "\u{0}" + stream) }
        // Stats come per track: the sensors keep their value when an audio track's report arrives.
        let video = "value_json.fields.kind == 'video'"
        let sensors: [(component: String, key: String, name: String, fields: [(String, String)])] = [
            ("binary_sensor", "motion", "Motion", [
                ("device_class", "motion"), ("state_topic", "\(prefix)/\(level)/alarm"),
                ("value_template", "{{ 'ON' if value_json.fields.active else 'OFF' }}"),
            ]),
            ("binary_sensor", "connectivity", "Camera connection", [
                ("device_class", "connectivity"), ("state_topic", "\(prefix)/\(level)/connectivity"),
                ("entity_category", "diagnostic"),
            ]),
            ("sensor", "fps", "Frame rate", [
                ("state_topic", "\(prefix)/\(level)/stats"), ("unit_of_measurement", "fps"), ("state_class", "measurement"),
                ("value_template", "{{ value_json.fields.fps | round(1) if \(video) else this.state }}"),
                ("entity_category", "diagnostic"),
            ]),
            ("sensor", "bitrate", "Bitrate", [
                ("state_topic", "\(prefix)/\(level)/stats"), ("unit_of_measurement", "bit/s"), ("device_class", "data_rate"),
                ("state_class", "measurement"),
                ("value_template", "{{ value_json.fields['bitrate-bps'] if \(video) else this.state }}"),
                ("entity_category", "diagnostic"),
            ]),
            ("sensor", "gop", "Keyframe interval", [
                ("state_topic", "\(prefix)/\(level)/stats"), ("unit_of_measurement", "s"), ("state_class", "measurement"),
                ("value_template", "{{ value_json.fields['gop-seconds'] | round(2) if \(video) and 'gop-seconds' in value_json.fields else this.state }}"),
                ("entity_category", "diagnostic"),
            ]),
            ("sensor", "last_clip", "Last clip", [
                ("state_topic", "\(prefix)/\(level)/clip"), ("value_template", "{{ value_json.fields.path }}"),
                ("icon", "mdi:filmstrip"),
            ]),
        ]
        return sensors.map { sensor in
            var object = JSONObject()
            object.append("name", sensor.name)
            object.append("unique_id", "\(device)_\(sensor.key)")
            object.append("object_id", "\(device)_\(sensor.key)")
            for (key, value) in sensor.fields { object.append(key, value) }
            object.append("availability_topic", availabilityTopic)
            var deviceObject = JSONObject()
            deviceObject.append("identifiers", device)  // Home Assistant takes one id as a string
            deviceObject.append("name", stream)
            deviceObject.append("manufacturer", "camflow")
            deviceObject.append("model", "camera stream")
            object.append("device", object: deviceObject)
            return Config(topic: "\(discoveryPrefix)/\(sensor.component)/\(device)/\(sensor.key)/config", payload: object.text)
        }
    }
}

/// Names made safe for MQTT topics and Home Assistant ids. A name that had
/// to change gets a short hash of the original, so two names never become one
/// ("cam/1" and "cam_1", "a_b"+"c" and "a"+"b_c").
enum MQTTTopic {
    /// One topic level: no '/', no wildcard a publisher may not use, no control character.
    static func level(_ name: String) -> String {
        cleaned(name) { $0 == "/" || $0 == "+" || $0 == "#" || $0.value < 0x20 || $0.value == 0x7F }
    }

    /// Letters, digits, '_' and '-' only, as Home Assistant wants its ids.
    static func identifier(_ name: String) -> String {
        cleaned(name) { !($0.isASCII && (("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "-")) }
    }

    private static func cleaned(_ name: String, replacing unsafe: (Unicode.Scalar) -> Bool) -> String {
        var scalars = String.UnicodeScalarView()
        var changed = false
        for scalar in name.unicodeScalars {
            if unsafe(scalar) {
                scalars.append("_")
                changed = changed || scalar != "_"
            } else {
                scalars.append(scalar)
            }
        }
        let result = String(scalars)
        return changed || result.isEmpty ? result + "-" + hash(name) : result
    }

    /// FNV-1a of the UTF-8 bytes, 8 hex digits: stable across runs, unlike Hasher.
    static func hash(_ name: String) -> String {
        var value: UInt32 = 2_166_136_261
        for byte in name.utf8 { value = (value ^ UInt32(byte)) &* 16_777_619 }
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }
}
