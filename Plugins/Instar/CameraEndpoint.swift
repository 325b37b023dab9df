import Camflow
public import InstarProtocol

/// Where a camera is: scheme, host, port and path, with credentials kept
/// apart so that nothing printed ever holds the password.
public struct CameraEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var secure: Bool
    public var host: String
    public var port: Int
    /// The path and query, `/ws` by default.
    public var path: String

    public init(secure: Bool, host: String, port: Int? = nil, path: String = CameraPath.webSocket) {
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
        if path.isEmpty { path = CameraPath.webSocket }
        var username: String?
        var password: String?
        if let at = authority.lastIndex(of: "@") {
            let credentials = authority[..<at]
            authority = authority[authority.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                username = String(credentials[..<colon]).percentDecoded
                password = String(credentials[credentials.index(after: colon)...]).percentDecoded
            } else {
                username = String(credentials).percentDecoded
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
}

/// A camera URL that cannot be used.
public struct CameraEndpointError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
