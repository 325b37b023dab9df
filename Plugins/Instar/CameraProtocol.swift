import Camflow

/// The text side of the INSTAR camera's WebSocket protocol, as the camera
/// (and camflow's simulator and web restream) understands it.
public enum CameraCommand: Equatable, Sendable {
    /// `livestream` or `livestream/<channel>`.
    case startLivestream(channel: Int?)
    /// `stop` or `stop/livestream`.
    case stop
    /// `keep-alive`.
    case keepAlive

    /// The channels the camera offers: 11 (full), 12 (medium, the default), 13 (small).
    public static let channels = [11, 12, 13]

    /// Parses a client text message; nil for anything the camera does not know.
    public init?(_ text: String) {
        let command = text.trimmingCharacters(in: " \r\n\t")
        switch command {
        case "livestream": self = .startLivestream(channel: nil)
        case "stop", "stop/livestream": self = .stop
        case "keep-alive": self = .keepAlive
        default:
            guard command.hasPrefix("livestream/"), let channel = Int(command.dropFirst("livestream/".count)) else {
                return nil
            }
            self = .startLivestream(channel: channel)
        }
    }

    /// The message a client sends.
    public var text: String {
        switch self {
        case .startLivestream(let channel): channel.map { "livestream/\($0)" } ?? "livestream"
        case .stop: "stop"
        case .keepAlive: "keep-alive"
        }
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let first = s.first, set.contains(first) { s.removeFirst() }
        while let last = s.last, set.contains(last) { s.removeLast() }
        return String(s)
    }
}

/// Where a camera is: scheme, host, port and path, with credentials kept
/// apart so that nothing printed ever holds the password.
public struct CameraEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var secure: Bool
    public var host: String
    public var port: Int
    /// The path and query, `/ws` by default.
    public var path: String

    public init(secure: Bool, host: String, port: Int? = nil, path: String = "/ws") {
        self.secure = secure
        self.host = host
        self.port = port ?? (secure ? 443 : 80)
        self.path = path.hasPrefix("/") ? path : "/" + path
    }

    /// Parses `ws://host[:port][/path]` or `wss://...`; credentials in the URL
    /// (`user:pass@`) are returned separately.
    public static func parse(_ url: String) throws(CameraEndpointError)
        -> (endpoint: CameraEndpoint, username: String?, password: String?)
    {
        let secure: Bool
        var rest: Substring
        if url.hasPrefix("ws://") {
            secure = false
            rest = url.dropFirst(5)
        } else if url.hasPrefix("wss://") {
            secure = true
            rest = url.dropFirst(6)
        } else {
            throw CameraEndpointError(message: "'\(Redaction.url(url))' is not a ws:// or wss:// URL")
        }
        let pathStart = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        var authority = rest[..<pathStart]
        var path = String(rest[pathStart...])
        if path.isEmpty { path = "/ws" }
        var username: String?
        var password: String?
        if let at = authority.lastIndex(of: "@") {
            let credentials = authority[..<at]
            authority = authority[authority.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                username = String(credentials[..<colon]).removingPercentEncoding
                password = String(credentials[credentials.index(after: colon)...]).removingPercentEncoding
            } else {
                username = String(credentials).removingPercentEncoding
            }
        }
        var host = String(authority)
        var port: Int?
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            let after = host[host.index(after: close)...]
            if after.hasPrefix(":") { port = Int(after.dropFirst()) }
            host = String(host[host.index(after: host.startIndex)..<close])
        } else if let colon = host.lastIndex(of: ":") {
            guard let value = Int(host[host.index(after: colon)...]), (1...65535).contains(value) else {
                throw CameraEndpointError(message: "'\(Redaction.url(url))' has an invalid port")
            }
            port = value
            host = String(host[..<colon])
        }
        guard !host.isEmpty else { throw CameraEndpointError(message: "'\(Redaction.url(url))' has no host") }
        return (CameraEndpoint(secure: secure, host: host, port: port, path: path), username, password)
    }

    /// `ws://host:port/path`, never with credentials: whatever the path
    /// holds goes through the one redaction every printed URL goes through.
    public var description: String {
        Redaction.url("\(secure ? "wss" : "ws")://\(hostHeader)\(path)")
    }

    /// `host:port`, with brackets around an IPv6 address: the `Host` header.
    var hostHeader: String {
        "\(host.contains(":") ? "[\(host)]" : host):\(port)"
    }

    /// The request path with `?user=&pwd=` for firmware that takes
    /// credentials in the query. Goes on the wire only, never into a
    /// description: print the endpoint instead.
    func pathWithQueryCredentials(username: String, password: String) -> String {
        let separator = path.contains("?") ? "&" : "?"
        return path + "\(separator)user=\(username.percentEncodedForQuery)&pwd=\(password.percentEncodedForQuery)"
    }
}

/// A camera URL that cannot be used.
public struct CameraEndpointError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

extension String {
    var removingPercentEncoding: String {
        var bytes: [UInt8] = []
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
               let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    var percentEncodedForQuery: String {
        var out = ""
        for byte in utf8 {
            let char = Character(Unicode.Scalar(byte))
            if char.isASCII && (char.isLetter || char.isNumber || "-._~".contains(char)) {
                out.append(char)
            } else {
                out += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return out
    }
}
