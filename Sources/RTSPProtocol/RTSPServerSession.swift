/// One client's session on an RTSP server as a value (RFC 2326 Appendix A.2):
/// no session → ready after SETUP → playing after PLAY → torn down. It
/// says what to do with each request; the I/O layer does it and answers.
public struct RTSPServerSession: Sendable {
    public enum State: Sendable, Equatable {
        case initial
        case ready
        case playing
        case tornDown
    }

    /// What the server does with a request that passed authentication.
    public enum Decision: Sendable, Equatable {
        /// Answer with `Public:` (`RTSPServerSession.publicMethods`).
        case options
        case describe
        /// Set up a track with the first transport the server supports among
        /// `transports`; the answer carries `Session:` (see `sessionHeader`).
        case setup(transports: [RTSPTransport])
        case play
        case teardown
        /// GET_PARAMETER / SET_PARAMETER: a keep-alive, answered 200.
        case keepAlive
        /// Answer with this status and nothing else.
        case reject(status: Int)
    }

    public static let publicMethods: [RTSPMethod] = [.options, .describe, .setup, .play, .teardown, .getParameter]

    public private(set) var state = State.initial
    public private(set) var id: String?
    /// Seconds without a request after which the session ends.
    public let timeout: Int
    /// When the session ends unless a request comes (the caller's clock).
    public private(set) var expiresAt: Duration?

    public init(timeout: Int = 60) {
        self.timeout = timeout
    }

    /// `Session: id;timeout=N` for answers once a session exists.
    public var sessionHeader: String? { id.map { "\($0);timeout=\(timeout)" } }

    /// Whether the session has lapsed by `now` (its resources should go).
    public func isExpired(now: Duration) -> Bool {
        guard let expiresAt, state == .ready || state == .playing else { return false }
        return now >= expiresAt
    }

    /// Decides on `request`; `newID` is called once, at the first SETUP,
    /// for a random session id (RFC 2326 §12.37: at least 8 characters).
    public mutating func receive(_ request: RTSPRequest, now: Duration, newID: () -> String) -> Decision {
        let method = request.method
        if isExpired(now: now) {
            state = .tornDown
            expiresAt = nil
        }
        if state == .ready || state == .playing { expiresAt = now + .seconds(timeout) }
        // A Session header must name this session, whatever the state.
        if let given = request.headers["Session"] {
            let givenID = RTSPSessionHeader(parsing: given)?.id
            guard let id, givenID == id, state != .tornDown else { return .reject(status: 454) }
        }
        switch method {
        case .options: return .options
        case .describe: return .describe
        case .getParameter, .setParameter:
            return .keepAlive
        case .setup:
            guard state == .initial || state == .ready else { return .reject(status: 455) }
            guard let value = request.headers["Transport"], let transports = try? RTSPTransport.parse(value) else {
                return .reject(status: 461)
            }
            if id == nil {
                let fresh = newID()
                guard RTSPSessionHeader.isValid(id: fresh) else { return .reject(status: 500) }
                id = fresh
            }
            state = .ready
            expiresAt = now + .seconds(timeout)
            return .setup(transports: transports)
        case .play:
            guard state == .ready || state == .playing, request.headers["Session"] != nil else { return .reject(status: 455) }
            state = .playing
            return .play
        case .teardown:
            guard state == .ready || state == .playing, request.headers["Session"] != nil else { return .reject(status: 455) }
            state = .tornDown
            expiresAt = nil
            return .teardown
        case .pause, .record, .announce:
            return .reject(status: state == .initial || state == .tornDown ? 455 : 501)
        default:
            return .reject(status: 501)
        }
    }
}
