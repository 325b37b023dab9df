import Crypto
import InstarProtocol

/// The HTTP Basic credentials the web sink requires, checked the same way
/// for pages, the API, metrics and the WebSocket upgrade.
struct WebCredentials: Sendable {
    let expected: BasicCredentials

    init(username: String, password: String) {
        expected = BasicCredentials(username: username, password: password)
    }

    static let realm = "camflow"
    /// The challenge a refused request carries.
    static let challenge = BasicCredentials.challenge(realm: realm)

    /// Whether an `Authorization` header value holds these credentials.
    func accepts(_ authorization: String?) -> Bool {
        guard let authorization, let offered = BasicCredentials(authorization: authorization) else { return false }
        // Digests of fixed length, compared in full: neither the time taken nor a
        // length (the password followed by NUL bytes) tells anything or lets anything through.
        let userMatches = Self.equal(Array(offered.username.utf8), Array(expected.username.utf8))
        let passwordMatches = Self.equal(Array(offered.password.utf8), Array(expected.password.utf8))
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
