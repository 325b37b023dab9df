import Camflow
import CZeroMQ
import Foundation
import Logging
import NIOCore

/// CURVE keys: 40 Z85 characters for 32 bytes, keypairs, and key files.
public enum CurveKey {
    /// The 32 bytes of a 40-character Z85 key; nil when it is not one.
    public static func decode(_ z85: String) -> [UInt8]? {
        guard z85.utf8.count == 40, case .success(let libzmq) = LibZMQ.loaded else { return nil }
        var key = [UInt8](repeating: 0, count: 32)
        let decoded = key.withUnsafeMutableBufferPointer { libzmq.z85Decode($0.baseAddress, z85) != nil }
        return decoded ? key : nil
    }

    /// 40 Z85 characters for 32 bytes.
    public static func encode(_ key: [UInt8]) -> String {
        guard case .success(let libzmq) = LibZMQ.loaded else { return "" }
        var text = [CChar](repeating: 0, count: 41)
        _ = libzmq.z85Encode(&text, key, key.count)
        return String(decoding: text.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A new keypair, in Z85.
    public static func keypair() throws(ZMQError) -> (publicKey: String, secretKey: String) {
        if let missing = LibZMQ.loadError { throw missing }
        var publicKey = [CChar](repeating: 0, count: 41)
        var secretKey = [CChar](repeating: 0, count: 41)
        guard LibZMQ.api.curveKeypair(&publicKey, &secretKey) == 0 else { throw ZMQError("zmq_curve_keypair") }
        return (String(decoding: publicKey.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self),
                String(decoding: secretKey.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }

    /// The public key that goes with a Z85 secret key.
    public static func publicKey(ofSecret secret: String) -> String? {
        guard decode(secret) != nil else { return nil }
        var publicKey = [CChar](repeating: 0, count: 41)
        guard LibZMQ.api.curvePublic(&publicKey, secret) == 0 else { return nil }
        return String(decoding: publicKey.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The keys in a key file: one per line, either bare Z85 or as
    /// `public-key = "..."` / `secret-key = "..."` (the format `camflow
    /// keygen` writes, and CZMQ's certificates use). A line that starts
    /// with `#` is a comment (`#` is also a Z85 character, so only there).
    public static func keys(inFile path: String, kind: String? = nil) throws -> [String] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var keys: [String] = []
        for raw in text.split(whereSeparator: \.isNewline) {
            var line = raw.drop { $0 == " " || $0 == "\t" }
            guard !line.isEmpty, !line.hasPrefix("#") else { continue }
            // `public-key = "..."`; anything else is a bare key ('=' is a Z85 character too).
            if let name = ["public-key", "secret-key"].first(where: { line.hasPrefix($0) }),
               let equals = line.firstIndex(of: "="),
               line[line.index(line.startIndex, offsetBy: name.count)..<equals].allSatisfy({ $0 == " " || $0 == "\t" }) {
                if let kind, name != kind { continue }
                line = Substring(line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
                    .trimmingCharacters(in: CharacterSet(charactersIn: "\"")))
            }
            let key = line.trimmingCharacters(in: .whitespaces)
            guard decode(key) != nil else {
                throw CurveKeyError(description: "'\(path)' holds a line that is not a 40-character Z85 key")
            }
            keys.append(key)
        }
        return keys
    }
}

/// A key or key file that cannot be used; never quotes a secret.
public struct CurveKeyError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// A ZAP handler (ZeroMQ RFC 27) on one context: admits CURVE clients
/// whose long-term public key is listed, refuses and logs the rest.
///
/// libzmq asks whatever is bound at `inproc://zeromq.zap.01` in the server
/// socket's context; while nothing is, libzmq 4.3 lets every CURVE client in.
/// So the handler is bound before the server socket binds, the server socket
/// sets a ZAP domain and ZMQ_ZAP_ENFORCE_DOMAIN (no answer: refused), and
/// the handler stops only after the server socket closed.
enum ZAPHandler {
    static let endpoint = "inproc://zeromq.zap.01"
    static let domain = "camflow"

    /// Binds the handler, runs `body` while a thread of its own answers
    /// requests, then stops the thread (woken at once, not at its next look)
    /// and returns once its socket is closed. `body` closes the server socket.
    static func serving<T>(context: ZMQContext, allowed: Set<[UInt8]>, logger: Logger,
                           _ body: () async throws -> T) async throws -> T {
        let socket = try ZMQSocket(.rep, context: context)
        try socket.set(ZMQ_LINGER, 0)
        try socket.bind(endpoint)
        let wakeup = try ZMQWakeup(context: context)
        // The socket is the thread's from here until the thread ends.
        nonisolated(unsafe) let owned = socket
        async let answering: Void = BlockingIOThread.run(name: "zmq-zap") {
            defer { owned.close() }
            try answer(owned, wakeup, allowed: allowed, logger: logger)
        }
        let result: T
        do {
            result = try await body()
        } catch {
            wakeup.wake()
            try? await answering
            throw error
        }
        wakeup.wake()
        try await answering
        return result
    }

    /// The thread: answers each request until woken.
    private static func answer(_ socket: ZMQSocket, _ wakeup: ZMQWakeup, allowed: Set<[UInt8]>,
                               logger: Logger) throws(ZMQError) {
        var poll = ZMQPollSet([wakeup.receiver, socket])
        while true {
            try poll.wait()
            if poll.hasMessage(0) { return }
            // Request: version, request id, domain, address, identity, mechanism, credentials.
            guard let request = try socket.receive(maxParts: 8) else { continue }
            let frames = request.map { Array($0.readableBytesView) }
            let key = frames.count == 7 && frames[5] == Array("CURVE".utf8) && frames[6].count == 32 ? frames[6] : nil
            let admitted = frames.first == Array("1.0".utf8) && frames[2] == Array(domain.utf8)
                && key.map { allowed.contains($0) } == true
            if !admitted {
                let address = frames.count > 3 ? String(decoding: frames[3], as: UTF8.self) : "?"
                logger.warning("refused a CURVE client from \(UntrustedText.printable(address, limit: 64)): its key \(key.map(CurveKey.encode) ?? "(none)") is not in allowed-client-keys")
            }
            // Reply: version, the same request id, status, status text, user id, metadata.
            // A REP socket answers before it receives again; the inproc pipe does not refuse.
            _ = try socket.send([
                ByteBuffer(string: "1.0"),
                request.count > 1 ? request[1] : ByteBuffer(),
                ByteBuffer(string: admitted ? "200" : "400"),
                ByteBuffer(string: admitted ? "OK" : "client key not allowed"),
                ByteBuffer(string: admitted ? key.map(CurveKey.encode) ?? "" : ""),
                ByteBuffer(),
            ])
        }
    }

    /// Makes `socket` a CURVE server whose clients this handler checks.
    static func configureServer(_ socket: ZMQSocket, secretKey: String) throws(ZMQError) {
        try socket.set(ZMQ_CURVE_SERVER, 1)
        try socket.set(ZMQ_CURVE_SECRETKEY, bytes: Array(secretKey.utf8))
        try socket.set(ZMQ_ZAP_DOMAIN, bytes: Array(domain.utf8))
        try socket.set(ZMQ_ZAP_ENFORCE_DOMAIN, 1)
    }
}

/// CURVE settings of a node, from its options: a server with the clients
/// it admits, or a client with the server it trusts.
struct CurveSettings: Sendable {
    enum Role: Sendable {
        case server(secretKey: String, allowedClients: Set<[UInt8]>)
        case client(serverKey: String, publicKey: String, secretKey: String)
    }

    let role: Role

    /// Applies the client role to `socket` (a server is set up with its ZAP handler).
    func configureClient(_ socket: ZMQSocket) throws(ZMQError) {
        guard case .client(let serverKey, let publicKey, let secretKey) = role else { return }
        try socket.set(ZMQ_CURVE_SERVERKEY, bytes: Array(serverKey.utf8))
        try socket.set(ZMQ_CURVE_PUBLICKEY, bytes: Array(publicKey.utf8))
        try socket.set(ZMQ_CURVE_SECRETKEY, bytes: Array(secretKey.utf8))
    }
}

extension CurveSettings {
    /// The CURVE options a node declares; `server` adds those of a server.
    static func optionSpecs(server: Bool) -> [OptionSpec] {
        var specs = [
            OptionSpec("curve-secret-key", .secret, "This side's CURVE secret key (40 Z85 characters); never printed. Use ${VAR}."),
            OptionSpec("curve-secret-key-file", .string, "File holding this side's secret key (as 'camflow keygen' writes it)."),
            OptionSpec("curve-server-key", .string, "Be a CURVE client of the server with this public key (Z85)."),
        ]
        if server {
            specs += [
                OptionSpec("curve-server", .bool, default: "false",
                           "Be the CURVE server: encrypt, and admit only the clients listed in allowed-client-keys."),
                OptionSpec("allowed-client-keys", .list(.string), "Public keys (Z85) of the clients a CURVE server admits."),
                OptionSpec("allowed-client-keys-file", .string, "File of client public keys a CURVE server admits, one per line."),
            ]
        }
        return specs
    }

    /// The settings the options ask for; nil when they ask for no CURVE.
    static func from(_ options: NodeOptions) throws -> CurveSettings? {
        func fail(_ option: String, _ message: String) throws -> Never {
            throw options.error(message, option: option)
        }
        let curveOptions = ["curve-secret-key", "curve-secret-key-file", "curve-server", "curve-server-key",
                            "allowed-client-keys", "allowed-client-keys-file"]
        if let missing = LibZMQ.loadError, let set = curveOptions.first(where: options.isSet) {
            try fail(set, "CURVE needs libzmq: \(missing)")
        }
        var secret = try options.ifSet("curve-secret-key", options.string)
        if let file = try options.ifSet("curve-secret-key-file", options.string) {
            if secret != nil { try fail("curve-secret-key-file", "set 'curve-secret-key' or 'curve-secret-key-file', not both") }
            let found: [String]
            do { found = try CurveKey.keys(inFile: file, kind: "secret-key") } catch {
                try fail("curve-secret-key-file", "cannot read a secret key from '\(file)': \(error)")
            }
            guard found.count == 1 else { try fail("curve-secret-key-file", "'\(file)' must hold exactly one secret key") }
            secret = found[0]
        }
        let isServer = options.isSet("curve-server") ? try options.bool("curve-server") : false
        let serverKey = try options.ifSet("curve-server-key", options.string)
        guard isServer || serverKey != nil else {
            if secret != nil { try fail("curve-secret-key", "a CURVE key needs 'curve-server: true' or 'curve-server-key'") }
            return nil
        }
        guard !(isServer && serverKey != nil) else { try fail("curve-server-key", "a node is a CURVE server or a client, not both") }
        guard let secret, CurveKey.decode(secret) != nil else {
            try fail("curve-secret-key", "CURVE needs this side's secret key: 40 Z85 characters in 'curve-secret-key' or 'curve-secret-key-file'")
        }
        guard ZMQContext.has("curve") else {
            try fail("curve-secret-key", "this libzmq (\(ZMQContext.version)) was built without CURVE")
        }
        if let serverKey {
            guard CurveKey.decode(serverKey) != nil else { try fail("curve-server-key", "'curve-server-key' must be 40 Z85 characters") }
            guard let publicKey = CurveKey.publicKey(ofSecret: secret) else { try fail("curve-secret-key", "not a CURVE secret key") }
            return CurveSettings(role: .client(serverKey: serverKey, publicKey: publicKey, secretKey: secret))
        }
        var allowed = try options.stringList("allowed-client-keys")
        if let file = try options.ifSet("allowed-client-keys-file", options.string) {
            do { allowed += try CurveKey.keys(inFile: file, kind: "public-key") } catch {
                try fail("allowed-client-keys-file", "cannot read client keys from '\(file)': \(error)")
            }
        }
        var keys: Set<[UInt8]> = []
        for key in allowed {
            guard let bytes = CurveKey.decode(key) else {
                try fail("allowed-client-keys", "'\(UntrustedText.printable(key, limit: 48))' is not a 40-character Z85 public key")
            }
            keys.insert(bytes)
        }
        guard !keys.isEmpty else {
            try fail("curve-server", "a CURVE server admits only listed clients: set 'allowed-client-keys' or 'allowed-client-keys-file'")
        }
        return CurveSettings(role: .server(secretKey: secret, allowedClients: keys))
    }
}
