import Crypto
import Foundation

/// Why an authentication header was refused. Never carries a password or a
/// digest response: only what kind of thing was wrong.
public enum RTSPAuthError: Error, Sendable, Equatable, CustomStringConvertible {
    case tooLong(limit: Int)
    case unsupportedScheme(String)
    case malformed(String)
    case missing(String)
    case unsupportedAlgorithm(String)
    case unsupportedQOP(String)

    public var description: String {
        switch self {
        case .tooLong(let limit): "authentication header longer than \(limit) bytes"
        case .unsupportedScheme(let scheme): "unsupported authentication scheme \"\(scheme)\""
        case .malformed(let reason): "malformed authentication header: \(reason)"
        case .missing(let name): "authentication header without \(name)"
        case .unsupportedAlgorithm(let name): "unsupported Digest algorithm \"\(name)\" (MD5 only)"
        case .unsupportedQOP(let name): "unsupported Digest qop \"\(name)\" (auth only)"
        }
    }
}

/// The parameters of an auth scheme (RFC 7235 §2.1): `name=token` or
/// `name="quoted \" string"`, comma-separated, bounded.
public struct AuthParameters: Sendable, Equatable {
    public static let maxLength = 4096
    public static let maxCount = 32

    public private(set) var scheme: String
    public private(set) var values: [String: String]

    /// Reads `Scheme a=b, c="d"`; names are lowercased, duplicates refused.
    public init(parsing header: String) throws(RTSPAuthError) {
        guard header.utf8.count <= Self.maxLength else { throw .tooLong(limit: Self.maxLength) }
        var bytes = Array(header.utf8)[...]
        Self.skipSpaces(&bytes)
        let scheme = bytes.prefix(while: isTokenByte)
        guard !scheme.isEmpty else { throw .malformed("no scheme") }
        self.scheme = String(decoding: scheme, as: UTF8.self)
        bytes = bytes.dropFirst(scheme.count)
        values = [:]
        while true {
            Self.skipSpaces(&bytes)
            while bytes.first == UInt8(ascii: ",") { bytes = bytes.dropFirst(); Self.skipSpaces(&bytes) }
            guard !bytes.isEmpty else { break }
            let name = bytes.prefix(while: isTokenByte)
            guard !name.isEmpty else { throw .malformed("a parameter name expected") }
            bytes = bytes.dropFirst(name.count)
            Self.skipSpaces(&bytes)
            guard bytes.first == UInt8(ascii: "=") else { throw .malformed("no \"=\" after \(excerpt(bytes: name, limit: 32))") }
            bytes = bytes.dropFirst()
            Self.skipSpaces(&bytes)
            var value: [UInt8] = []
            if bytes.first == UInt8(ascii: "\"") {
                bytes = bytes.dropFirst()
                var closed = false
                while let byte = bytes.first {
                    bytes = bytes.dropFirst()
                    if byte == UInt8(ascii: "\\") {
                        guard let escaped = bytes.first else { break }
                        value.append(escaped)
                        bytes = bytes.dropFirst()
                    } else if byte == UInt8(ascii: "\"") {
                        closed = true
                        break
                    } else {
                        value.append(byte)
                    }
                }
                guard closed else { throw .malformed("unterminated quoted string") }
            } else {
                value = Array(bytes.prefix(while: isTokenByte))
                bytes = bytes.dropFirst(value.count)
            }
            Self.skipSpaces(&bytes)
            guard bytes.isEmpty || bytes.first == UInt8(ascii: ",") else {
                throw .malformed("unexpected text after \(excerpt(bytes: name, limit: 32))")
            }
            let key = String(decoding: name, as: UTF8.self).lowercased()
            guard values[key] == nil else { throw .malformed("\(excerpt(key)) given twice") }
            guard values.count < Self.maxCount else { throw .malformed("more than \(Self.maxCount) parameters") }
            values[key] = String(decoding: value, as: UTF8.self)
        }
    }

    private static func skipSpaces(_ bytes: inout ArraySlice<UInt8>) {
        while let first = bytes.first, first == 0x20 || first == 0x09 { bytes = bytes.dropFirst() }
    }

    func required(_ name: String) throws(RTSPAuthError) -> String {
        guard let value = values[name] else { throw .missing(name) }
        return value
    }
}

/// A quoted-string for a header: backslash before `"` and `\`.
func quoted(_ text: String) -> String {
    "\"" + RTSPWire.clean(text).replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
}

func md5Hex(_ text: String) -> String {
    hex(Array(Insecure.MD5.hash(data: Array(text.utf8))))
}

/// Equal without a timing that says where two secrets first differ: both
/// are hashed first, so their lengths do not show either.
func constantTimeEqual(_ a: String, _ b: String) -> Bool {
    let left = Array(SHA256.hash(data: Array(a.utf8)))
    let right = Array(SHA256.hash(data: Array(b.utf8)))
    var difference: UInt8 = 0
    for index in 0..<left.count { difference |= left[index] ^ right[index] }
    return difference == 0
}

// MARK: - Challenges (what a server sends, what a client reads)

/// A `WWW-Authenticate` challenge: Basic or Digest (RFC 2617 / 7616, MD5).
public enum RTSPChallenge: Sendable, Equatable {
    case basic(realm: String)
    case digest(DigestChallenge)

    /// Reads one challenge; Digest with an algorithm other than MD5 is refused.
    public init(parsing header: String) throws(RTSPAuthError) {
        let parameters = try AuthParameters(parsing: header)
        switch parameters.scheme.lowercased() {
        case "basic": self = .basic(realm: parameters.values["realm"] ?? "")
        case "digest": self = .digest(try DigestChallenge(parameters))
        default: throw .unsupportedScheme(excerpt(parameters.scheme))
        }
    }

    /// The strongest challenge among a response's `WWW-Authenticate` headers
    /// (Digest before Basic); nil if none is understood.
    public static func best(of headers: [String]) -> RTSPChallenge? {
        let challenges = headers.compactMap { try? RTSPChallenge(parsing: $0) }
        return challenges.first { if case .digest = $0 { true } else { false } } ?? challenges.first
    }

    public var header: String {
        switch self {
        case .basic(let realm): "Basic realm=\(quoted(realm))"
        case .digest(let digest): digest.header
        }
    }

    /// The client's `Authorization` for a request (RFC 2617 §3.2.2).
    /// `cnonce` is the caller's random text; `nonceCount` counts requests on this nonce, from 1.
    public func authorization(username: String, password: String, method: RTSPMethod, uri: String,
                              cnonce: String, nonceCount: UInt32 = 1) -> String {
        switch self {
        case .basic:
            return "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
        case .digest(let challenge):
            return challenge.authorization(username: username, password: password, method: method, uri: uri,
                                           cnonce: cnonce, nonceCount: nonceCount).header
        }
    }
}

/// A Digest challenge (RFC 2617 §3.2.1).
public struct DigestChallenge: Sendable, Equatable {
    public var realm: String
    public var nonce: String
    public var opaque: String?
    /// Whether the server offered `qop=auth` (else RFC 2069's form is used).
    public var qopAuth: Bool
    public var stale: Bool

    public init(realm: String, nonce: String, opaque: String? = nil, qopAuth: Bool = true, stale: Bool = false) {
        self.realm = realm
        self.nonce = nonce
        self.opaque = opaque
        self.qopAuth = qopAuth
        self.stale = stale
    }

    init(_ parameters: AuthParameters) throws(RTSPAuthError) {
        if let algorithm = parameters.values["algorithm"], algorithm.lowercased() != "md5" {
            throw .unsupportedAlgorithm(excerpt(algorithm))
        }
        var qopAuth = false
        if let qop = parameters.values["qop"] {
            let offered = qop.split(separator: ",").map { $0.trimmingSpaces.lowercased() }
            guard offered.contains("auth") else { throw .unsupportedQOP(excerpt(qop)) }
            qopAuth = true
        }
        self.init(realm: try parameters.required("realm"), nonce: try parameters.required("nonce"),
                  opaque: parameters.values["opaque"], qopAuth: qopAuth,
                  stale: parameters.values["stale"]?.lowercased() == "true")
    }

    public var header: String {
        var parts = ["realm=\(quoted(realm))", "nonce=\(quoted(nonce))", "algorithm=MD5"]
        if qopAuth { parts.append("qop=\"auth\"") }
        if let opaque { parts.append("opaque=\(quoted(opaque))") }
        if stale { parts.append("stale=true") }
        return "Digest " + parts.joined(separator: ", ")
    }

    public func authorization(username: String, password: String, method: RTSPMethod, uri: String,
                              cnonce: String, nonceCount: UInt32 = 1) -> DigestAuthorization {
        let nc = String(repeating: "0", count: 8 - String(nonceCount, radix: 16).count) + String(nonceCount, radix: 16)
        var authorization = DigestAuthorization(username: username, realm: realm, nonce: nonce, uri: uri, response: "",
                                                opaque: opaque, qopAuth: qopAuth, nonceCount: qopAuth ? nc : nil,
                                                cnonce: qopAuth ? cnonce : nil)
        authorization.response = authorization.expectedResponse(password: password, method: method)
        return authorization
    }
}

/// A client's Digest `Authorization` (RFC 2617 §3.2.2).
public struct DigestAuthorization: Sendable, Equatable {
    public var username: String
    public var realm: String
    public var nonce: String
    public var uri: String
    public var response: String
    public var opaque: String?
    public var qopAuth: Bool
    public var nonceCount: String?
    public var cnonce: String?

    public init(username: String, realm: String, nonce: String, uri: String, response: String, opaque: String? = nil,
                qopAuth: Bool = false, nonceCount: String? = nil, cnonce: String? = nil) {
        self.username = username
        self.realm = realm
        self.nonce = nonce
        self.uri = uri
        self.response = response
        self.opaque = opaque
        self.qopAuth = qopAuth
        self.nonceCount = nonceCount
        self.cnonce = cnonce
    }

    /// Reads `Digest username=…, …`; qop other than auth, or auth without nc
    /// and cnonce, is refused.
    public init(parsing header: String) throws(RTSPAuthError) {
        let parameters = try AuthParameters(parsing: header)
        guard parameters.scheme.lowercased() == "digest" else { throw .unsupportedScheme(excerpt(parameters.scheme)) }
        if let algorithm = parameters.values["algorithm"], algorithm.lowercased() != "md5" {
            throw .unsupportedAlgorithm(excerpt(algorithm))
        }
        var qopAuth = false
        var nonceCount: String?
        var cnonce: String?
        if let qop = parameters.values["qop"] {
            guard qop.lowercased() == "auth" else { throw .unsupportedQOP(excerpt(qop)) }
            qopAuth = true
            let nc = try parameters.required("nc")
            guard nc.utf8.count == 8, UInt32(nc, radix: 16) != nil else { throw .malformed("nc is not 8 hex digits") }
            nonceCount = nc
            cnonce = try parameters.required("cnonce")
        }
        self.init(username: try parameters.required("username"), realm: try parameters.required("realm"),
                  nonce: try parameters.required("nonce"), uri: try parameters.required("uri"),
                  response: try parameters.required("response"), opaque: parameters.values["opaque"], qopAuth: qopAuth,
                  nonceCount: nonceCount, cnonce: cnonce)
    }

    public var header: String {
        var parts = ["username=\(quoted(username))", "realm=\(quoted(realm))", "nonce=\(quoted(nonce))", "uri=\(quoted(uri))",
                     "response=\(quoted(response))", "algorithm=MD5"]
        if let opaque { parts.append("opaque=\(quoted(opaque))") }
        if qopAuth, let nonceCount, let cnonce { parts += ["qop=auth", "nc=\(nonceCount)", "cnonce=\(quoted(cnonce))"] }
        return "Digest " + parts.joined(separator: ", ")
    }

    /// RFC 2617 §3.2.2.1: MD5(HA1:nonce[:nc:cnonce:qop]:HA2).
    public func expectedResponse(password: String, method: RTSPMethod) -> String {
        let ha1 = md5Hex("\(username):\(realm):\(password)")
        let ha2 = md5Hex("\(method.name):\(uri)")
        if qopAuth, let nonceCount, let cnonce {
            return md5Hex("\(ha1):\(nonce):\(nonceCount):\(cnonce):auth:\(ha2)")
        }
        return md5Hex("\(ha1):\(nonce):\(ha2)")
    }
}

// MARK: - Server side

/// A server's check of requests against one user: challenges with nonces
/// that carry their issue time and a MAC (so no table of nonces to bound),
/// constant-time comparisons, nonces that expire by the caller's clock.
/// Replays of one nonce within its lifetime are not detected (nc is not tracked).
public struct RTSPAuthenticator: Sendable, CustomStringConvertible, CustomReflectable {
    public enum Scheme: Sendable, Equatable {
        case basic
        case digest
    }

    /// What the check concluded; the I/O layer answers 401 with `challenges` unless `.authorized`.
    public enum Outcome: Sendable, Equatable {
        case authorized(username: String)
        /// No or wrong credentials: 401 with fresh challenges.
        case denied
        /// Right credentials on an expired nonce: 401 with `stale=true`.
        case stale
    }

    public let realm: String
    public let scheme: Scheme
    public let nonceLifetime: Duration
    private let username: String
    private let password: String
    private let secret: [UInt8]

    /// `secret`: at least 16 random bytes from the caller, for the nonces' MAC.
    public init(realm: String, username: String, password: String, scheme: Scheme = .digest,
                nonceLifetime: Duration = .seconds(60), secret: [UInt8]) {
        precondition(secret.count >= 16, "the nonce secret needs 16 random bytes")
        self.realm = realm
        self.username = username
        self.password = password
        self.scheme = scheme
        self.nonceLifetime = nonceLifetime
        self.secret = secret
    }

    public var description: String { "RTSPAuthenticator(realm: \(realm), user: \(username), scheme: \(scheme))" }

    /// What `dump` and the debugger show: no password, no secret.
    public var customMirror: Mirror {
        Mirror(self, children: ["realm": realm, "username": username, "scheme": scheme], displayStyle: .struct)
    }

    /// The `WWW-Authenticate` value for a 401. `now`: the caller's monotonic
    /// time since any fixed origin, the same for every call.
    public func challenge(now: Duration, random: inout some RandomNumberGenerator, stale: Bool = false) -> String {
        switch scheme {
        case .basic:
            return RTSPChallenge.basic(realm: realm).header
        case .digest:
            let issued = String(Self.milliseconds(now), radix: 16)
            let salt = String(random.next(), radix: 16)
            let body = "\(issued).\(salt)"
            return DigestChallenge(realm: realm, nonce: "\(body).\(mac(body))", qopAuth: true, stale: stale).header
        }
    }

    /// Checks a request's `Authorization` header (nil when absent).
    public func check(authorization: String?, method: RTSPMethod, uri: String, now: Duration) -> Outcome {
        guard let authorization else { return .denied }
        switch scheme {
        case .basic:
            let parts = authorization.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "basic",
                  let decoded = Data(base64Encoded: parts[1].trimmingSpaces)
            else { return .denied }
            let given = String(decoding: decoded, as: UTF8.self)
            return constantTimeEqual(given, "\(username):\(password)") ? .authorized(username: username) : .denied
        case .digest:
            guard let digest = try? DigestAuthorization(parsing: authorization) else { return .denied }
            let rightUser = constantTimeEqual(digest.username, username)
            guard digest.realm == realm, digest.uri == uri || Self.sameResource(digest.uri, uri) else { return .denied }
            let parts = digest.nonce.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 3, constantTimeEqual(String(parts[2]), mac("\(parts[0]).\(parts[1])")),
                  let issued = UInt64(parts[0], radix: 16)
            else { return .denied }
            let rightResponse = constantTimeEqual(digest.response, digest.expectedResponse(password: password, method: method))
            guard rightUser, rightResponse else { return .denied }
            let age = Self.milliseconds(now) &- issued
            guard issued <= Self.milliseconds(now), age <= Self.milliseconds(nonceLifetime) else { return .stale }
            return .authorized(username: username)
        }
    }

    /// Some clients sign the path where the request line has the absolute URL.
    static func sameResource(_ signed: String, _ requested: String) -> Bool {
        guard requested.isAbsoluteRTSPURL, signed.hasPrefix("/") else { return false }
        let afterScheme = requested.drop { $0 != "/" }.dropFirst(2)
        return String(afterScheme.drop { $0 != "/" }) == signed
    }

    private func mac(_ text: String) -> String {
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: secret))
        hmac.update(data: Array(text.utf8))
        return hex(Array(hmac.finalize()).prefix(16))
    }

    static func milliseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return 0 }
        return UInt64(seconds) &* 1000 &+ UInt64(attoseconds / 1_000_000_000_000_000)
    }
}
