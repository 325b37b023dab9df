import NIOCore

/// Why a client gave up on a server; never carries a password.
public enum RTSPClientError: Error, Sendable, Equatable, CustomStringConvertible {
    case unauthorized
    case status(Int, method: String)
    case tooManyRedirects(limit: Int)
    case invalidRedirect
    case unexpectedCSeq(expected: Int, got: Int)
    case invalidDescription(SDPError)
    case noSupportedMedia
    case invalidTransport(String)
    case noSession
    case notPlaying
    case invalidURL(String)

    public var description: String {
        switch self {
        case .unauthorized: "the server refused the credentials (401)"
        case .status(let status, let method): "the server answered \(method) with \(status) \(RTSPResponse.reason(for: status))"
        case .tooManyRedirects(let limit): "more than \(limit) redirects"
        case .invalidRedirect: "a redirect without an rtsp:// Location"
        case .unexpectedCSeq(let expected, let got): "an answer with CSeq \(got) where \(expected) was expected"
        case .invalidDescription(let error): "the server's SDP: \(error)"
        case .noSupportedMedia: "no H.264, H.265 or AAC media in the server's SDP"
        case .invalidTransport(let reason): "the server's Transport: \(reason)"
        case .noSession: "a SETUP answer without a valid Session header"
        case .notPlaying: "no session is playing"
        case .invalidURL(let url): "the server gave an invalid URL \"\(url)\""
        }
    }
}

/// A client's request sequence as a value (RFC 2326 Appendix A.1):
/// OPTIONS → DESCRIBE → SETUP per track → PLAY, with Basic or Digest
/// authentication (one retry on 401, more on a stale nonce), redirects
/// followed a bounded number of times, and keep-alives. It returns the
/// requests to send; the I/O layer sends them and feeds back the answers.
public struct RTSPClientSession: Sendable, CustomReflectable {
    /// RTP over the RTSP connection, or UDP to the caller's ports
    /// (`firstClientPort` + 2 × track index, RTCP on the next port).
    public enum TransportChoice: Sendable, Equatable {
        case tcp
        case udp(firstClientPort: Int)
    }

    /// A track the client sets up: its media, the URL of its SETUP and the
    /// transport the server chose.
    public struct Track: Sendable, Equatable {
        public var media: SDPMedia
        public var url: String
        public var transport: RTSPTransport?
    }

    public enum Action: Sendable, Equatable {
        case send(RTSPRequest)
        /// PLAY was answered: RTP flows on `tracks`' transports; RTP-Info if the server sent it.
        case playing(rtpInfo: [RTPInfo])
        /// Close this connection, open one to the URL, call `start`.
        case redirect(to: String)
        case failed(RTSPClientError)
        /// An answer that needs nothing further (a keep-alive's).
        case none
    }

    private enum Phase: Sendable, Equatable {
        case idle, options, describe, setup(Int), play, playing, failed
    }

    public static let maxRedirects = 3
    public static let maxStaleRetries = 3
    public static let supportedEncodings: Set<String> = ["h264", "h265", "mpeg4-generic"]

    public private(set) var url: String
    public let transport: TransportChoice
    public var userAgent = "camflow"
    private let credentials: (username: String, password: String)?
    private var phase = Phase.idle
    private var cseq = 0
    private var pending: RTSPRequest?
    private var challenge: RTSPChallenge?
    private var nonceCount: UInt32 = 0
    private var retriedWithCredentials = false
    private var staleRetries = 0
    public private(set) var redirects = 0
    /// Where PLAY, keep-alives and TEARDOWN go once DESCRIBE was answered.
    public private(set) var aggregateURL: String
    public private(set) var sessionDescription: SessionDescription?
    public private(set) var tracks: [Track] = []
    public private(set) var session: RTSPSessionHeader?
    /// The server's `Public` methods (GET_PARAMETER for keep-alives when listed).
    public private(set) var serverMethods: [String] = []

    public init(url: String, username: String? = nil, password: String? = nil, transport: TransportChoice = .tcp) {
        self.url = url
        self.aggregateURL = url
        self.transport = transport
        if let username, let password { credentials = (username, password) } else { credentials = nil }
    }

    /// What `dump` and the debugger show: no password.
    public var customMirror: Mirror {
        Mirror(self, children: ["url": url, "username": credentials?.username as Any, "tracks": tracks], displayStyle: .struct)
    }

    /// The first request on a (new) connection.
    public mutating func start(random: inout some RandomNumberGenerator) -> Action {
        phase = .options
        aggregateURL = url
        tracks = []
        session = nil
        return .send(request(.options, uri: url, random: &random))
    }

    /// The session timeout the server gave (RFC 2326's default: 60 s).
    public var sessionTimeout: Duration { .seconds(session?.timeout ?? 60) }

    /// When the next keep-alive is due after a request sent at `lastRequest`:
    /// half the session timeout, so one lost or slow answer does not end it.
    public func keepAliveDue(after lastRequest: Duration) -> Duration {
        lastRequest + sessionTimeout / 2
    }

    /// A keep-alive: GET_PARAMETER if the server lists it, else OPTIONS.
    public mutating func keepAlive(random: inout some RandomNumberGenerator) -> Action {
        guard phase == .playing else { return .failed(.notPlaying) }
        let method: RTSPMethod = serverMethods.contains("GET_PARAMETER") ? .getParameter : .options
        return .send(request(method, uri: aggregateURL, random: &random))
    }

    /// TEARDOWN of the session, if one exists.
    public mutating func teardown(random: inout some RandomNumberGenerator) -> RTSPRequest? {
        guard session != nil else { return nil }
        phase = .idle
        return request(.teardown, uri: aggregateURL, random: &random)
    }

    /// Takes the answer to the last request sent and says what comes next.
    public mutating func receive(_ response: RTSPResponse, random: inout some RandomNumberGenerator) -> Action {
        guard phase != .failed, phase != .idle, let sent = pending else { return .none }
        guard response.cseq == sent.cseq else {
            // An answer to an earlier request (a keep-alive's, late) is dropped.
            if response.cseq < sent.cseq { return .none }
            return fail(.unexpectedCSeq(expected: sent.cseq, got: response.cseq))
        }
        pending = nil
        if response.status == 401 { return authenticate(response, sent: sent, random: &random) }
        retriedWithCredentials = false
        staleRetries = 0
        if (300..<400).contains(response.status), phase != .playing { return redirect(response) }
        switch phase {
        case .options:
            if response.status == 200, let methods = response.headers["Public"] {
                serverMethods = methods.split(separator: ",").map { $0.trimmingSpaces.uppercased() }
            }
            // Some cameras answer OPTIONS badly and serve DESCRIBE fine.
            phase = .describe
            var headers = RTSPHeaders()
            headers.add("Accept", "application/sdp")
            return .send(request(.describe, uri: url, headers: headers, random: &random))
        case .describe:
            guard response.status == 200 else { return fail(.status(response.status, method: sent.method.name)) }
            let text = String(buffer: response.body)
            let description: SessionDescription
            do {
                description = try SessionDescription(parsing: text)
            } catch {
                return fail(.invalidDescription(error))
            }
            sessionDescription = description
            let base = response.headers["Content-Base"] ?? response.headers["Content-Location"] ?? url
            guard base.isRequestURI else { return fail(.invalidURL(excerpt(base))) }
            // The aggregate control URL (RFC 2326 C.1.1): PLAY and TEARDOWN go there.
            if let control = description.control, control != "*" {
                aggregateURL = control.isAbsoluteRTSPURL ? control : description.controlURL(for: SDPMedia(kind: "", payloadType: 0, encoding: "", clockRate: 0, control: control), base: base)
            } else {
                aggregateURL = base
            }
            tracks = description.media
                .filter { Self.supportedEncodings.contains($0.encoding.lowercased()) }
                .map { Track(media: $0, url: description.controlURL(for: $0, base: base), transport: nil) }
            guard !tracks.isEmpty else { return fail(.noSupportedMedia) }
            if let bad = (tracks.map(\.url) + [aggregateURL]).first(where: { !$0.isRequestURI }) { return fail(.invalidURL(excerpt(bad))) }
            return setup(0, random: &random)
        case .setup(let index):
            guard response.status == 200 else { return fail(.status(response.status, method: sent.method.name)) }
            guard let session = response.headers.session else { return fail(.noSession) }
            if let known = self.session, known.id != session.id { return fail(.noSession) }
            self.session = session
            guard let value = response.headers["Transport"] else { return fail(.invalidTransport("missing")) }
            do {
                guard let chosen = try RTSPTransport.parse(value).first else { return fail(.invalidTransport("empty")) }
                tracks[index].transport = chosen
            } catch {
                return fail(.invalidTransport(error.description))
            }
            if index + 1 < tracks.count { return setup(index + 1, random: &random) }
            phase = .play
            var headers = RTSPHeaders()
            headers.add("Range", "npt=0.000-")
            return .send(request(.play, uri: aggregateURL, headers: headers, random: &random))
        case .play:
            guard response.status == 200 else { return fail(.status(response.status, method: sent.method.name)) }
            phase = .playing
            return .playing(rtpInfo: response.headers["RTP-Info"].flatMap(RTPInfo.parse) ?? [])
        case .playing:
            return .none
        case .idle, .failed:
            return .none
        }
    }

    private mutating func setup(_ index: Int, random: inout some RandomNumberGenerator) -> Action {
        phase = .setup(index)
        let transport: RTSPTransport
        switch self.transport {
        case .tcp:
            transport = RTSPTransport(lower: .tcp, interleaved: 2 * index...2 * index + 1)
        case .udp(let first):
            transport = RTSPTransport(lower: .udp, clientPort: first + 2 * index...first + 2 * index + 1)
        }
        var headers = RTSPHeaders()
        headers.setTransport([transport])
        return .send(request(.setup, uri: tracks[index].url, headers: headers, random: &random))
    }

    private mutating func authenticate(_ response: RTSPResponse, sent: RTSPRequest, random: inout some RandomNumberGenerator) -> Action {
        guard credentials != nil, let offered = RTSPChallenge.best(of: response.headers.values("WWW-Authenticate")) else {
            return fail(.unauthorized)
        }
        var stale = false
        if case .digest(let digest) = offered { stale = digest.stale }
        if stale {
            staleRetries += 1
            guard staleRetries <= Self.maxStaleRetries else { return fail(.unauthorized) }
        } else {
            guard !retriedWithCredentials else { return fail(.unauthorized) }
            retriedWithCredentials = true
        }
        challenge = offered
        nonceCount = 0
        var headers = sent.headers
        headers.remove("Authorization")
        return .send(request(sent.method, uri: sent.uri, headers: headers, random: &random))
    }

    private mutating func redirect(_ response: RTSPResponse) -> Action {
        guard let location = response.headers["Location"], location.isAbsoluteRTSPURL, location.isRequestURI else {
            return fail(.invalidRedirect)
        }
        redirects += 1
        guard redirects <= Self.maxRedirects else { return fail(.tooManyRedirects(limit: Self.maxRedirects)) }
        url = location
        aggregateURL = location
        phase = .idle
        challenge = nil
        session = nil
        tracks = []
        return .redirect(to: location)
    }

    private mutating func fail(_ error: RTSPClientError) -> Action {
        phase = .failed
        return .failed(error)
    }

    private mutating func request(_ method: RTSPMethod, uri: String, headers: RTSPHeaders = RTSPHeaders(),
                                  random: inout some RandomNumberGenerator) -> RTSPRequest {
        cseq += 1
        var headers = headers
        headers.set("User-Agent", userAgent)
        if let session, method != .options || phase == .playing { headers.set("Session", session.id) }
        if let challenge, let credentials {
            nonceCount += 1
            let cnonce = String(random.next(), radix: 16)
            headers.set("Authorization", challenge.authorization(username: credentials.username, password: credentials.password,
                                                                 method: method, uri: uri, cnonce: cnonce, nonceCount: nonceCount))
        }
        let request = RTSPRequest(method: method, uri: uri, cseq: cseq, headers: headers)
        pending = request
        return request
    }
}
