import Foundation

/// HTTP Basic credentials (RFC 7617) as the camera and its clients send
/// them: one parser and one encoder for the camera node, the simulator
/// and the web sink.
public struct BasicCredentials: Sendable, Equatable {
    public var username: String
    public var password: String

    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    /// Reads an `Authorization` header value; nil unless it is well-formed
    /// `Basic base64(user:password)` in UTF-8.
    public init?(authorization: String) {
        let parts = authorization.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic",
              let decoded = Data(base64Encoded: parts[1].trimmingCharacters(in: .whitespaces)),
              let text = String(data: decoded, encoding: .utf8),
              let colon = text.firstIndex(of: ":")
        else { return nil }
        self.init(username: String(text[..<colon]), password: String(text[text.index(after: colon)...]))
    }

    /// The `Authorization` header value that carries these credentials.
    public var authorization: String {
        "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
    }

    /// The `WWW-Authenticate` challenge of a server that wants them.
    public static func challenge(realm: String) -> String {
        "Basic realm=\"\(realm)\", charset=\"UTF-8\""
    }
}
