import NIOCore
import RTSPProtocol

/// The server's check of credentials: Basic and Digest both offered (Digest
/// first), each through ``RTSPAuthenticator`` with one nonce secret drawn
/// from the system's CSPRNG at start.
struct RTSPAccess: Sendable {
    let basic: RTSPAuthenticator
    let digest: RTSPAuthenticator

    init(credentials: RTSPCredentials, realm: String) {
        var random = SystemRandomNumberGenerator()
        let secret = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &random) }
        basic = RTSPAuthenticator(realm: realm, username: credentials.username, password: credentials.password,
                                  scheme: .basic, secret: secret)
        digest = RTSPAuthenticator(realm: realm, username: credentials.username, password: credentials.password,
                                   scheme: .digest, secret: secret)
    }

    /// nil when the request may go on; otherwise why not (`.denied` or `.stale`).
    func check(_ request: RTSPRequest, now: Duration) -> RTSPAuthenticator.Outcome? {
        let header = request.headers["Authorization"]
        let isBasic = header.map { $0.prefix(6).lowercased() == "basic " } ?? false
        let outcome = (isBasic ? basic : digest).check(authorization: header, method: request.method, uri: request.uri, now: now)
        if case .authorized = outcome { return nil }
        return outcome
    }

    /// The `WWW-Authenticate` values of a 401.
    func challenges(now: Duration, random: inout some RandomNumberGenerator, stale: Bool) -> [String] {
        [digest.challenge(now: now, random: &random, stale: stale), basic.challenge(now: now, random: &random)]
    }
}
