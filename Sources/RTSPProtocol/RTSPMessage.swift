public import NIOCore

/// An RTSP method (RFC 2326 §10): the ones camflow speaks by name, any other
/// token kept as sent so a server can answer 501.
public struct RTSPMethod: Sendable, Hashable, CustomStringConvertible {
    public let name: String

    public init(_ name: String) { self.name = name }

    public static let options = RTSPMethod("OPTIONS")
    public static let describe = RTSPMethod("DESCRIBE")
    public static let setup = RTSPMethod("SETUP")
    public static let play = RTSPMethod("PLAY")
    public static let pause = RTSPMethod("PAUSE")
    public static let teardown = RTSPMethod("TEARDOWN")
    public static let getParameter = RTSPMethod("GET_PARAMETER")
    public static let setParameter = RTSPMethod("SET_PARAMETER")
    public static let announce = RTSPMethod("ANNOUNCE")
    public static let record = RTSPMethod("RECORD")

    public var description: String { name }
}

/// RTSP headers in the order sent; names compare without case (RFC 2326
/// §4.2 borrows HTTP's rule), values are kept as sent, trimmed.
public struct RTSPHeaders: Sendable, Equatable, Sequence {
    public private(set) var fields: [(name: String, value: String)] = []

    public init() {}

    public init(_ fields: [(String, String)]) {
        for (name, value) in fields { add(name, value) }
    }

    /// The first value of `name`, or nil.
    public subscript(name: String) -> String? {
        fields.first { Self.same($0.name, name) }?.value
    }

    /// Every value of `name`, in order (WWW-Authenticate may come several times).
    public func values(_ name: String) -> [String] {
        fields.filter { Self.same($0.name, name) }.map(\.value)
    }

    public mutating func add(_ name: String, _ value: String) {
        fields.append((name, value))
    }

    /// Replaces every value of `name` with one.
    public mutating func set(_ name: String, _ value: String) {
        remove(name)
        add(name, value)
    }

    public mutating func remove(_ name: String) {
        fields.removeAll { Self.same($0.name, name) }
    }

    public var count: Int { fields.count }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }

    public static func == (lhs: RTSPHeaders, rhs: RTSPHeaders) -> Bool {
        lhs.fields.count == rhs.fields.count
            && zip(lhs.fields, rhs.fields).allSatisfy { Self.same($0.name, $1.name) && $0.value == $1.value }
    }

    static func same(_ a: String, _ b: String) -> Bool {
        a.utf8.count == b.utf8.count && a.lowercased() == b.lowercased()
    }
}

/// An RTSP request: method, URI, headers (CSeq among them) and a body.
public struct RTSPRequest: Sendable, Equatable {
    public var method: RTSPMethod
    public var uri: String
    public var cseq: Int
    /// Every header but CSeq and Content-Length, which the parser reads into
    /// `cseq` and `body` and the writer writes from them.
    public var headers: RTSPHeaders
    public var body: ByteBuffer

    public init(method: RTSPMethod, uri: String, cseq: Int, headers: RTSPHeaders = RTSPHeaders(), body: ByteBuffer = ByteBuffer()) {
        self.method = method
        self.uri = uri
        self.cseq = cseq
        self.headers = headers
        self.body = body
    }
}

/// An RTSP response: status, reason, headers (CSeq among them) and a body.
public struct RTSPResponse: Sendable, Equatable {
    public var status: Int
    public var reason: String
    public var cseq: Int
    /// Every header but CSeq and Content-Length (see `RTSPRequest.headers`).
    public var headers: RTSPHeaders
    public var body: ByteBuffer

    public init(status: Int, reason: String? = nil, cseq: Int, headers: RTSPHeaders = RTSPHeaders(), body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.reason = reason ?? RTSPResponse.reason(for: status)
        self.cseq = cseq
        self.headers = headers
        self.body = body
    }

    /// RFC 2326 §7.1.1's reason phrases (every code it defines), so no
    /// answer goes out with a made-up "Status N".
    public static func reason(for status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 200: "OK"
        case 201: "Created"
        case 250: "Low on Storage Space"
        case 300: "Multiple Choices"
        case 301: "Moved Permanently"
        case 302: "Moved Temporarily"
        case 303: "See Other"
        case 304: "Not Modified"
        case 305: "Use Proxy"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 402: "Payment Required"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 406: "Not Acceptable"
        case 407: "Proxy Authentication Required"
        case 408: "Request Time-out"
        case 410: "Gone"
        case 411: "Length Required"
        case 412: "Precondition Failed"
        case 413: "Request Entity Too Large"
        case 414: "Request-URI Too Large"
        case 415: "Unsupported Media Type"
        case 451: "Parameter Not Understood"
        case 452: "Conference Not Found"
        case 453: "Not Enough Bandwidth"
        case 454: "Session Not Found"
        case 455: "Method Not Valid in This State"
        case 456: "Header Field Not Valid for Resource"
        case 457: "Invalid Range"
        case 458: "Parameter Is Read-Only"
        case 459: "Aggregate Operation Not Allowed"
        case 460: "Only Aggregate Operation Allowed"
        case 461: "Unsupported Transport"
        case 462: "Destination Unreachable"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Time-out"
        case 505: "RTSP Version Not Supported"
        case 551: "Option not supported"
        default: "Status \(status)"
        }
    }
}

/// What an RTSP connection carries: a request, a response, or an RTP/RTCP
/// packet interleaved on the same stream (RFC 2326 §10.12).
public enum RTSPFrame: Sendable, Equatable {
    case request(RTSPRequest)
    case response(RTSPResponse)
    /// `$`, the channel, the payload: a slice of the bytes received, not a copy.
    case interleaved(channel: UInt8, payload: ByteBuffer)
}

/// Text from the wire made safe for an error or a log: printable ASCII,
/// at most `limit` characters.
func excerpt(_ text: some StringProtocol, limit: Int = 64) -> String {
    var out = ""
    for scalar in text.unicodeScalars {
        if out.count >= limit { out += "…"; break }
        out.unicodeScalars.append(scalar.value >= 0x20 && scalar.value < 0x7F ? scalar : "?")
    }
    return out
}

func excerpt(bytes: some Collection<UInt8>, limit: Int = 64) -> String {
    excerpt(String(decoding: bytes.prefix(limit + 1), as: UTF8.self), limit: limit)
}
