import Foundation

/// An `rtsp://` camera URL split into where to connect and what to ask
/// for; credentials in it are taken out so the URL can be printed.
struct CameraURL: Sendable, Equatable, CustomStringConvertible {
    var host: String
    var port: Int
    /// The URL the requests name: no user or password in it.
    var requestURL: String
    var username: String?
    var password: String?

    var description: String { requestURL }

    /// Parses `text`; the error says what is wrong without repeating a password.
    static func parse(_ text: String) throws(CameraURLError) -> CameraURL {
        guard text.utf8.count <= 4096 else { throw CameraURLError(reason: "the URL is longer than 4096 bytes") }
        guard let components = URLComponents(string: text) else { throw CameraURLError(reason: "not a URL") }
        guard components.scheme?.lowercased() == "rtsp" else {
            throw CameraURLError(reason: "the URL must start with rtsp://")
        }
        guard var host = components.host, !host.isEmpty else { throw CameraURLError(reason: "the URL has no host") }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let port = components.port ?? 554
        guard (1...65535).contains(port) else { throw CameraURLError(reason: "port \(port) out of range") }
        var clean = components
        clean.user = nil
        clean.password = nil
        guard let request = clean.string, request.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw CameraURLError(reason: "the URL must be printable ASCII without spaces (percent-encode the rest)")
        }
        return CameraURL(host: host, port: port, requestURL: request,
                         username: components.user?.removingPercentEncoding ?? components.user,
                         password: components.password?.removingPercentEncoding ?? components.password)
    }

    /// Where a redirect points, keeping this URL's credentials out of it.
    func redirected(to location: String) throws(CameraURLError) -> CameraURL {
        var next = try Self.parse(location)
        next.username = username
        next.password = password
        return next
    }
}

/// A camera URL that cannot be used, and why.
struct CameraURLError: Error, Sendable, CustomStringConvertible {
    var reason: String
    var description: String { reason }
}
