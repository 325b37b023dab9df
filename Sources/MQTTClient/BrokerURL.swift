import Camflow
import Foundation

/// Where an MQTT broker is: `mqtt://[user[:password]@]host[:port]` (port
/// 1883) or `mqtts://…` (TLS, port 8883); the credentials end at the last
/// '@'. The description never shows the password.
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
    ///
    /// The credentials end at the LAST '@': a password may hold '@', '#',
    /// '/' or '?' as typed (a generic URL parser would end the authority at
    /// the '#' and connect to whatever follows the first '@'). What could be
    /// read two ways is refused rather than guessed.
    public init(parsing text: String) throws(MQTTError) {
        guard let separator = text.range(of: "://") else {
            throw MQTTError("'\(Self.redacted(text))' is not a URL such as mqtt://host:1883")
        }
        let scheme = text[..<separator.lowerBound].lowercased()
        guard scheme == "mqtt" || scheme == "mqtts" else {
            throw MQTTError("broker URL scheme '\(UntrustedText.printable(scheme))' is not mqtt:// or mqtts://")
        }
        guard !text.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }) else {
            throw MQTTError("broker URL '\(Self.redacted(text))' holds a space or control character; percent-encode it (%20)")
        }
        let rest = text[separator.upperBound...]
        var hostPort = rest
        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            hostPort = rest[rest.index(after: at)...]
            let userinfo = rest[..<at]
            let colon = userinfo.firstIndex(of: ":")
            let user = colon.map { userinfo[..<$0] } ?? userinfo
            // Everything a generic parser ends the authority at: a user name holding one is most
            // likely a host with a path, not a name.
            if user.contains(where: { "/?#@[]".contains($0) }) {
                throw MQTTError("broker URL '\(Self.redacted(text))' is ambiguous: the user name would hold '/', '?', '#', '@' or brackets; percent-encode them (@ is %40)")
            }
            guard let decodedUser = user.removingPercentEncoding else {
                throw MQTTError("broker URL '\(Self.redacted(text))': the user name has a '%' that starts no %XX escape; write % as %25")
            }
            username = decodedUser
            if let colon {
                guard let decoded = userinfo[userinfo.index(after: colon)...].removingPercentEncoding else {
                    throw MQTTError("broker URL '\(Self.redacted(text))': the password has a '%' that starts no %XX escape; write % as %25")
                }
                password = decoded
            }
        }
        if hostPort.hasSuffix("/") { hostPort = hostPort.dropLast() }
        if hostPort.contains(where: { "/?#".contains($0) }) {
            throw MQTTError("broker URL '\(Self.redacted(text))' has a path, query or fragment; only mqtt://host:port is meant")
        }
        var host: Substring
        var portText: Substring?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else {
                throw MQTTError("broker URL '\(Self.redacted(text))' opens an IPv6 address with '[' and never closes it")
            }
            host = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
            let after = hostPort[hostPort.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw MQTTError("broker URL '\(Self.redacted(text))': expected ':port' after ']'") }
                portText = after.dropFirst()
            }
            guard !host.isEmpty, host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                throw MQTTError("broker URL '\(Self.redacted(text))': '[\(host)]' is not an IPv6 address")
            }
        } else {
            let parts = hostPort.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2 else {
                throw MQTTError("broker URL '\(Self.redacted(text))' has more than one ':' after the host; an IPv6 address goes in brackets, [::1]:1883")
            }
            host = parts[0]
            portText = parts.count == 2 ? parts[1] : nil
            guard host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_") }) else {
                throw MQTTError("broker URL '\(Self.redacted(text))': '\(UntrustedText.printable(String(host)))' is not a host name or address")
            }
        }
        guard !host.isEmpty else { throw MQTTError("broker URL '\(Self.redacted(text))' has no host") }
        var port: Int?
        if let portText {
            guard !portText.isEmpty, portText.count <= 9, portText.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int(portText) else {
                throw MQTTError("broker URL '\(Self.redacted(text))': the port '\(UntrustedText.printable(String(portText)))' is not a number")
            }
            guard (1...65535).contains(number) else { throw MQTTError("broker port \(number) is not between 1 and 65535") }
            port = number
        }
        self.init(host: String(host), port: port, tls: scheme == "mqtts", username: username, password: password)
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
