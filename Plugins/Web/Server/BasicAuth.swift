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
        // Both compared in full, so the time taken does not tell which part differs.
        let userMatches = Self.equal(Array(text[..<colon].utf8), Array(username.utf8))
        let passwordMatches = Self.equal(Array(text[text.index(after: colon)...].utf8), Array(password.utf8))
        return userMatches && passwordMatches
    }

    /// Compares without stopping at the first difference.
    private static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for i in 0..<max(a.count, b.count) {
            difference |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return difference == 0
    }
}
