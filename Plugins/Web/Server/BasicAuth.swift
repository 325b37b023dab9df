import Crypto
import Foundation

/// HTTP Basic credentials the web sink requires, checked the same way for
/// pages, the API, metrics and the WebSocket upgrade.
struct BasicCredentials: Sendable {
    let username: String
    let password: String

    static let realm = "camflow"
    /// The challenge a refused request carries.
    static let challenge = "Basic realm=\"\(realm)\", charset=\"UTF-8\""

    /// Whether an `Authorization` header value holds these credentials.
    func accepts(_ authorization: String?) -> Bool {
        guard let authorization else { return false }
        let parts = authorization.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic",
              let decoded = Data(base64Encoded: String(parts[1]).trimmingCharacters(in: .whitespaces)),
              let text = String(data: decoded, encoding: .utf8),
              let colon = text.firstIndex(of: ":")
        else { return false }
        // Digests of fixed length, compared in full: neither the time taken nor a
        // length (the password followed by NUL bytes) tells anything or lets anything through.
        let userMatches = Self.equal(Array(text[..<colon].utf8), Array(username.utf8))
        let passwordMatches = Self.equal(Array(text[text.index(after: colon)...].utf8), Array(password.utf8))
        return userMatches && passwordMatches
    }

    /// Whether two byte strings are equal, by their SHA-256 digests, without
    /// stopping at the first difference.
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        let left = Array(SHA256.hash(data: a)), right = Array(SHA256.hash(data: b))
        var difference: UInt8 = 0
        for index in 0..<left.count { difference |= left[index] ^ right[index] }
        return difference == 0
    }
}
