public import NIOCore

/// An alarm as an INSTAR camera announces it: on MQTT, the status topic
/// `instar/<MAC>/status/alarm/triggered` with `{"val":"N"}` (and, on WQHD
/// models, `…/triggered/object`), or as an alarm-server request with the
/// query `active=N` (and `object=M`). N: 1–4 detection area, 5 PIR or alarm
/// input, 6 audio, 7–10 PIR together with area 1–4, 99 a manual trigger,
/// 0 the end of the alarm. M: a sum of 1 person, 2 vehicle, 4 animal.
public struct CameraAlarm: Sendable, Equatable {
    /// What triggered: area1…area4, pir, audio, area+pir, manual, object; none when it ended.
    public var source: String
    /// The detection area, when an area took part.
    public var area: Int?
    /// Detected objects, such as "person" or "person+vehicle", when known.
    public var object: String?
    /// The camera's number for the trigger (N above, or M for an object message).
    public var value: Int
    /// True on a trigger, false when the camera reports the end (value 0).
    public var active: Bool

    public init(source: String, area: Int? = nil, object: String? = nil, value: Int, active: Bool) {
        self.source = source
        self.area = area
        self.object = object
        self.value = value
        self.active = active
    }

    /// The trigger a value N stands for; nil for a value the camera does not send.
    public init?(trigger value: Int, object: Int? = nil) {
        let objectName = object.flatMap(Self.objectName)
        switch value {
        case 0: self.init(source: "none", object: objectName, value: 0, active: false)
        case 1...4: self.init(source: "area\(value)", area: value, object: objectName, value: value, active: true)
        case 5: self.init(source: "pir", object: objectName, value: value, active: true)
        case 6: self.init(source: "audio", object: objectName, value: value, active: true)
        case 7...10: self.init(source: "area+pir", area: value - 6, object: objectName, value: value, active: true)
        case 99: self.init(source: "manual", object: objectName, value: value, active: true)
        default: return nil
        }
    }

    /// "person", "vehicle", "animal" or their sum ("person+vehicle"); nil for 0 or more than 7.
    public static func objectName(_ mask: Int) -> String? {
        guard (1...7).contains(mask) else { return nil }
        return [(1, "person"), (2, "vehicle"), (4, "animal")].filter { mask & $0.0 != 0 }.map(\.1).joined(separator: "+")
    }

    /// The MQTT topics of camera `mac` (colons or not, any case) under `prefix`.
    public static func mqttTopics(camera mac: String, prefix: String = "instar") -> (trigger: String, object: String) {
        let base = "\(prefix)/\(normalizedMAC(mac))/status/alarm/triggered"
        return (base, base + "/object")
    }

    /// A MAC address as INSTAR's topics write it: 12 upper-case hex digits,
    /// no colons.
    public static func normalizedMAC(_ mac: String) -> String {
        String(mac.filter { $0 != ":" && $0 != "-" }.uppercased())
    }

    /// Whether `mac` is 12 hex digits, with or without colons or dashes.
    public static func isMAC(_ mac: String) -> Bool {
        let digits = normalizedMAC(mac)
        return digits.count == 12 && digits.allSatisfy(\.isHexDigit)
    }

    /// The alarm an MQTT status message reports; nil when `payload` is not
    /// `{"val":"N"}` (or `{"val":N}`) with a value the camera sends.
    public static func fromMQTT(topic: String, payload: ByteBuffer) -> CameraAlarm? {
        guard payload.readableBytes <= 256, let text = payload.getString(at: payload.readerIndex, length: payload.readableBytes),
              let value = Self.val(in: text) else { return nil }
        if topic.hasSuffix("/object") {
            guard value != 0 else { return CameraAlarm(source: "object", value: 0, active: false) }
            guard let name = objectName(value) else { return nil }
            return CameraAlarm(source: "object", object: name, value: value, active: true)
        }
        return CameraAlarm(trigger: value)
    }

    /// The alarm an alarm-server request reports, from its query
    /// (`active=N&object=M`); nil without a known `active`.
    public static func fromAlarmServer(query: String) -> CameraAlarm? {
        var parameters: [String: Int] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let number = Int(parts[1]), (0...9999).contains(number) else { continue }
            parameters[String(parts[0])] = number
        }
        guard let active = parameters["active"] else { return nil }
        return CameraAlarm(trigger: active, object: parameters["object"])
    }

    /// N in `{"val":"N"}` or `{"val":N}`, allowing spaces; a small, strict
    /// reading instead of a JSON parser, since nothing else is in the message.
    static func val(in text: String) -> Int? {
        let compact = text.filter { !$0.isWhitespace }
        guard compact.hasPrefix("{\"val\":"), compact.hasSuffix("}") else { return nil }
        var inner = compact.dropFirst("{\"val\":".count).dropLast()
        if inner.hasPrefix("\""), inner.hasSuffix("\""), inner.count >= 2 { inner = inner.dropFirst().dropLast() }
        guard inner.count <= 4, let value = Int(inner), value >= 0 else { return nil }
        return value
    }
}
