/// The user an RTSP server requires (Basic or Digest). The password never
/// appears in a description, a dump or a log.
public struct RTSPCredentials: Sendable, CustomStringConvertible, CustomReflectable {
    public let username: String
    let password: String

    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    public var description: String { "RTSPCredentials(user: \(username))" }
    public var customMirror: Mirror { Mirror(self, children: ["username": username], displayStyle: .struct) }
}

/// What an ``RTSPMediaServer`` allows and how it sends: every bound on what
/// a client can make it hold (connections, queued bytes, UDP ports).
public struct RTSPServerConfiguration: Sendable {
    /// Largest RTP packet (its 12-byte header included), the path MTU.
    public var mtu = 1400
    /// A session (or a connection without one) with no request for this long is closed.
    public var sessionTimeout: Duration = .seconds(60)
    /// A connection whose request is not complete this long after its first byte (or after it opened) is closed.
    public var headerTimeout: Duration = .seconds(10)
    public var maxConnections = 256
    public var maxConnectionsPerClient = 32
    /// Bytes queued per client before it loses whole GOPs.
    public var clientQueueBytes = 8 << 20
    /// Bytes of RTP packets of the current GOP kept per stream for joiners.
    public var gopCacheBytes = 16 << 20
    /// Streams served at once; the one idle longest goes for a new one.
    public var maxStreams = 16
    /// Required of every request but OPTIONS when set.
    public var credentials: RTSPCredentials?
    public var realm = "camflow"
    /// Server ports for RTP/AVP over UDP (pairs: even RTP, odd RTCP); nil: UDP is refused (461).
    public var udpPorts: ClosedRange<Int>?
    /// UDP: bytes per second at which a joiner's first GOP is sent (then live).
    public var udpJoinRate = 4 << 20
    /// RTCP sender reports per track this often.
    public var senderReportInterval: Duration = .seconds(5)
    /// The `node` dimension of the server's metrics.
    public var metricsNode = "rtsp"

    public init() {}
}

/// Why a stream's init segment or fragment cannot be served.
public struct RTSPMediaError: Error, Sendable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
