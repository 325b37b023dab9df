import Foundation

/// Where an MQTT broker is: `mqtt://[user[:password]@]host[:port]` (port
/// 1883) or `mqtts://…` (TLS, port 8883). The description never shows the
/// password.
public struct BrokerURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var tls: Bool
    public var username: String?
    public var password: String?

    public init(host: String, port: Int? = nil, tls: Bool = false, username: String? = nil, password: String? = nil) {
        self.host = host
        self.port = port ?? (tls ? 8883 : 1883)
        self.tls = tls
        self.username = username
        self.password = password
    }

    /// Reads a broker URL; the error says what is wrong with it (without the password).
    public init(parsing text: String) throws(MQTTError) {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased() else {
            throw MQTTError("'\(Self.redacted(text))' is not a URL such as mqtt://host:1883")
        }
        guard scheme == "mqtt" || scheme == "mqtts" else {
            throw MQTTError("broker URL scheme '\(scheme)' is not mqtt:// or mqtts://")
        }
        guard let host = components.host, !host.isEmpty else { throw MQTTError("broker URL '\(Self.redacted(text))' has no host") }
        if let port = components.port, !(1...65535).contains(port) {
            throw MQTTError("broker port \(port) is not between 1 and 65535")
        }
        guard components.path.isEmpty || components.path == "/", components.query == nil else {
            throw MQTTError("broker URL '\(Self.redacted(text))' has a path or query; only mqtt://host:port is meant")
        }
        self.init(host: host, port: components.port, tls: scheme == "mqtts",
                  username: components.percentEncodedUser.map { $0.removingPercentEncoding ?? $0 },
                  password: components.percentEncodedPassword.map { $0.removingPercentEncoding ?? $0 })
    }

    public var description: String {
        let user = username.map { ($0) + (password == nil ? "" : ":***") + "@" } ?? ""
        let address = host.contains(":") ? "[\(host)]" : host
        return "\(tls ? "mqtts" : "mqtt")://\(user)\(address):\(port)"
    }

    /// `text` with everything before an '@' (the credentials, however
    /// malformed the rest) replaced, for error messages.
    static func redacted(_ text: String) -> String {
        guard let at = text.lastIndex(of: "@") else { return text }
        let scheme = text[..<at].range(of: "://").map { text[..<$0.upperBound] } ?? ""
        return scheme + "***" + text[at...]
    }
}
