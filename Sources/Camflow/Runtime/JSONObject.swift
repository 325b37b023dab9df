/// Builds one JSON object as text, keys in insertion order. Enough for log
/// lines and message headers without a Foundation round trip.
public struct JSONObject: Sendable {
    private var body = ""

    public init() {}

    /// The object as JSON text.
    public var text: String { "{" + body + "}" }

    private mutating func key(_ key: String) {
        if !body.isEmpty { body += "," }
        JSONObject.quote(key, into: &body)
        body += ":"
    }

    public mutating func append(_ key: String, _ value: String?) {
        guard let value else { return }
        self.key(key)
        JSONObject.quote(value, into: &body)
    }

    public mutating func append(_ key: String, _ value: Int64?) {
        guard let value else { return }
        self.key(key)
        body += String(value)
    }

    public mutating func append(_ key: String, _ value: Double?) {
        guard let value else { return }
        self.key(key)
        body += value.isFinite ? value.formatted(maxFractionDigits: 6) : "null"
    }

    public mutating func append(_ key: String, _ value: Bool?) {
        guard let value else { return }
        self.key(key)
        body += value ? "true" : "false"
    }

    public mutating func append(_ key: String, _ value: EventValue) {
        switch value {
        case .string(let s): append(key, s)
        case .int(let i): append(key, i)
        case .double(let d): append(key, d)
        case .bool(let b): append(key, b)
        }
    }

    /// A nested object.
    public mutating func append(_ key: String, object: JSONObject) {
        self.key(key)
        body += object.text
    }

    static func quote(_ string: String, into out: inout String) {
        out += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
