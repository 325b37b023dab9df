import Foundation
import NIOCore
import RTSPProtocol
import Testing

/// Deterministic randomness for nonces and cnonces (SplitMix64).
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct AuthenticationTests {
    /// RFC 2617 §3.5's worked example.
    static let rfcAuthorization = """
        Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", \
        uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", \
        response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"
        """

    @Test func computesRFC2617sExample() throws {
        let challenge = try RTSPChallenge(parsing: """
            Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", \
            opaque="5ccc069c403ebaf9f0171e9517f40e41"
            """)
        guard case .digest(let digest) = challenge else { Issue.record("not digest"); return }
        #expect(digest.qopAuth && !digest.stale)
        let authorization = digest.authorization(username: "Mufasa", password: "Circle Of Life", method: RTSPMethod("GET"),
                                                 uri: "/dir/index.html", cnonce: "0a4f113b", nonceCount: 1)
        #expect(authorization.response == "6629fae49393a05397450978507c4ef1")
        let parsed = try DigestAuthorization(parsing: Self.rfcAuthorization)
        #expect(parsed == authorization)
        #expect(parsed.expectedResponse(password: "Circle Of Life", method: RTSPMethod("GET")) == parsed.response)
        #expect(try DigestAuthorization(parsing: authorization.header) == authorization)
    }

    @Test func computesTheFormWithoutQOP() throws {
        let digest = DigestChallenge(realm: "testrealm@host.com", nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093", qopAuth: false)
        let authorization = digest.authorization(username: "Mufasa", password: "Circle Of Life", method: RTSPMethod("GET"),
                                                 uri: "/dir/index.html", cnonce: "ignored")
        // RFC 2069: MD5(HA1:nonce:HA2), HA1 = 939e7578ed9e3c518a452acee763bce9, HA2 = 39aff3a2bab6126f332b942af96d3366.
        #expect(authorization.response == "670fd8c2df070c60b045671b8b24ff02")
        #expect(authorization.cnonce == nil && !authorization.header.contains("qop"))
    }

    @Test func basicIsRFC2617sToo() throws {
        let header = RTSPChallenge.basic(realm: "WallyWorld")
            .authorization(username: "Aladdin", password: "open sesame", method: .describe, uri: "rtsp://h/", cnonce: "")
        #expect(header == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
    }

    @Test func readsQuotedStringsAndRefusesBrokenOnes() throws {
        let challenge = try RTSPChallenge(parsing: #"Digest realm="a \"quoted\" realm\\", nonce="n", stale=TRUE"#)
        #expect(challenge == .digest(DigestChallenge(realm: #"a "quoted" realm\"#, nonce: "n", qopAuth: false, stale: true)))
        #expect(try RTSPChallenge(parsing: challenge.header) == challenge)
        let broken = [
            #"Digest realm=""nested"", nonce="n""#,
            #"Digest realm="unterminated, nonce="n"#,
            #"Digest realm="a", realm="b", nonce="n""#,
            #"Digest realm="a" nonce="n""#,
            #"Digest ="a""#,
            "Digest " + (0..<40).map { "p\($0)=v" }.joined(separator: ","),
            "Digest realm=\"" + String(repeating: "x", count: 5000) + "\"",
            #"Digest realm="a", nonce="n", algorithm=SHA-256"#,
            #"Digest realm="a", nonce="n", qop="auth-int""#,
            #"Digest realm="a""#,
            #"Negotiate abc"#,
        ]
        for header in broken {
            #expect(throws: RTSPAuthError.self, "\(header.prefix(60))") { try RTSPChallenge(parsing: header) }
        }
        #expect(throws: RTSPAuthError.self) { try DigestAuthorization(parsing: #"Digest username="u", realm="r", nonce="n", uri="/", response="x", qop=auth"#) }
        #expect(RTSPChallenge.best(of: [#"Basic realm="r""#, #"Digest realm="r", nonce="n""#])
            == .digest(DigestChallenge(realm: "r", nonce: "n", qopAuth: false)))
    }

    static func authenticator(_ scheme: RTSPAuthenticator.Scheme = .digest) -> RTSPAuthenticator {
        RTSPAuthenticator(realm: "camflow", username: "viewer", password: "s3cret-pass", scheme: scheme,
                          nonceLifetime: .seconds(60), secret: Array(repeating: 7, count: 32))
    }

    static func answer(_ challenge: String, password: String = "s3cret-pass", uri: String = "rtsp://h:8554/cam1") throws -> String {
        try RTSPChallenge(parsing: challenge).authorization(username: "viewer", password: password, method: .describe,
                                                             uri: uri, cnonce: "c0ffee", nonceCount: 1)
    }

    @Test func serverAcceptsTheRightDigestAndNothingElse() throws {
        let server = Self.authenticator()
        var random = SeededRandom(state: 1)
        let challenge = server.challenge(now: .seconds(100), random: &random)
        #expect(challenge.hasPrefix("Digest realm=\"camflow\"") && challenge.contains("qop=\"auth\""))
        let uri = "rtsp://h:8554/cam1"
        let good = try Self.answer(challenge)
        #expect(server.check(authorization: good, method: .describe, uri: uri, now: .seconds(130)) == .authorized(username: "viewer"))
        #expect(server.check(authorization: good, method: .play, uri: uri, now: .seconds(130)) == .denied, "signed for DESCRIBE")
        #expect(server.check(authorization: good, method: .describe, uri: "rtsp://h:8554/other", now: .seconds(130)) == .denied)
        #expect(server.check(authorization: try Self.answer(challenge, password: "wrong"), method: .describe, uri: uri, now: .seconds(130)) == .denied)
        #expect(server.check(authorization: nil, method: .describe, uri: uri, now: .seconds(130)) == .denied)
        // A client that signs the path of an absolute request URL.
        let path = try Self.answer(challenge, uri: "/cam1")
        #expect(server.check(authorization: path, method: .describe, uri: uri, now: .seconds(130)) == .authorized(username: "viewer"))
        // A nonce the server did not issue, well-formed, with the right password.
        let forged = challenge.replacingFirst("nonce=\"", with: "nonce=\"1")
        #expect(server.check(authorization: try Self.answer(forged), method: .describe, uri: uri, now: .seconds(130)) == .denied)
    }

    @Test func noncesExpireAndTheClientIsToldStale() throws {
        let server = Self.authenticator()
        var random = SeededRandom(state: 2)
        let challenge = server.challenge(now: .seconds(100), random: &random)
        let good = try Self.answer(challenge)
        #expect(server.check(authorization: good, method: .describe, uri: "rtsp://h:8554/cam1", now: .seconds(160)) == .authorized(username: "viewer"))
        #expect(server.check(authorization: good, method: .describe, uri: "rtsp://h:8554/cam1", now: .milliseconds(160_001)) == .stale)
        #expect(server.check(authorization: good, method: .describe, uri: "rtsp://h:8554/cam1", now: .seconds(99)) == .stale, "from the future")
        let fresh = server.challenge(now: .seconds(161), random: &random, stale: true)
        #expect(fresh.contains("stale=true") && fresh != challenge)
    }

    @Test func basicServerSide() {
        let server = Self.authenticator(.basic)
        var random = SeededRandom(state: 3)
        #expect(server.challenge(now: .zero, random: &random) == "Basic realm=\"camflow\"")
        let good = RTSPChallenge.basic(realm: "camflow").authorization(username: "viewer", password: "s3cret-pass", method: .describe, uri: "/", cnonce: "")
        #expect(server.check(authorization: good, method: .describe, uri: "/", now: .zero) == .authorized(username: "viewer"))
        let bad = RTSPChallenge.basic(realm: "camflow").authorization(username: "viewer", password: "s3cret-pas", method: .describe, uri: "/", cnonce: "")
        #expect(server.check(authorization: bad, method: .describe, uri: "/", now: .zero) == .denied)
        #expect(server.check(authorization: "Basic !!!", method: .describe, uri: "/", now: .zero) == .denied)
    }

    @Test func noPasswordInDescriptions() throws {
        let server = Self.authenticator()
        #expect(!"\(server)".contains("s3cret-pass") && !String(reflecting: server).contains("s3cret-pass"))
        do {
            _ = try DigestAuthorization(parsing: #"Digest username="viewer", password="s3cret-pass""#)
        } catch {
            #expect(!"\(error)".contains("s3cret-pass"))
        }
    }
}

extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = range(of: target) else { return self }
        return replacingCharacters(in: range, with: replacement)
    }
}
