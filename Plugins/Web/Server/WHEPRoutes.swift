import Camflow
import Foundation
import Hummingbird
import NIOCore
import WebRTC

/// WebRTC playback over WHEP: `POST /whep/{stream}` with an SDP offer
/// answers `201 Created` with the SDP answer and a `Location`
/// (`/whep/{stream}/{session}`, 128 random bits) that `DELETE` ends. Behind
/// the same authentication as everything else the sink serves.
struct WHEPRoutes: Sendable {
    /// The endpoint, or why there is none (the port could not be bound, the libraries are missing).
    let endpoint: Result<WebRTCEndpoint, WebError>
    /// The web sink's bind host: the candidate when it is one address.
    let bindHost: String
    /// `webrtc-public-address`: HOST or HOST:PORT offered instead.
    let publicAddress: String?
    /// `allowed-origins`: pages of these origins may use WHEP from another origin (CORS).
    var allowedOrigins: [String] = []

    /// The largest offer read.
    static let maxOfferBytes = 65536

    func add(to router: Router<BasicRequestContext>) {
        router.post("/whep/:stream") { request, context in
            cors(request, try await offer(request, stream: try HLSRoutes.stream(context)))
        }
        router.delete("/whep/:stream/:session") { request, context in
            let stream = try HLSRoutes.stream(context)
            guard case .success(let endpoint) = endpoint, let session = context.parameters.get("session"),
                  await endpoint.close(stream: stream, session: session) else {
                return cors(request, Self.text("no such WebRTC session\n", .notFound))
            }
            return cors(request, Self.text("closed\n", .ok))
        }
        // CORS preflight, answered without credentials (a browser sends none with it).
        for path: RouterPath in ["/whep/:stream", "/whep/:stream/:session"] {
            router.on(path, method: .options) { request, _ in preflight(request) }
        }
    }

    /// 204 with what a page of an allowed origin may send; 403 for other origins.
    private func preflight(_ request: Request) -> Response {
        guard let origin = request.headers[.origin], crossOriginAllowed(origin, request) else {
            return Self.text("this origin may not use WHEP here (allowed-origins)\n", .forbidden)
        }
        var headers = HTTPFields()
        headers[.accessControlAllowOrigin] = origin
        headers[.accessControlAllowCredentials] = "true"
        headers[.accessControlAllowMethods] = "POST, DELETE, OPTIONS"
        headers[.accessControlAllowHeaders] = "authorization, content-type"
        headers[.accessControlMaxAge] = "600"
        headers[.vary] = "Origin"
        return Response(status: .noContent, headers: headers)
    }

    /// A response readable by a page of an allowed origin (its Location too; a 401 or 429 as well).
    func cors(_ request: Request, _ response: Response) -> Response {
        guard let origin = request.headers[.origin], crossOriginAllowed(origin, request) else { return response }
        var response = response
        response.headers[.accessControlAllowOrigin] = origin
        response.headers[.accessControlAllowCredentials] = "true"
        response.headers[.accessControlExposeHeaders] = "Location"
        response.headers[.vary] = "Origin"
        return response
    }

    private func crossOriginAllowed(_ origin: String, _ request: Request) -> Bool {
        let trimmed = origin.hasSuffix("/") ? String(origin.dropLast()) : origin
        return allowedOrigins.contains(trimmed) || allowedOrigins.contains("*")
    }

    private func offer(_ request: Request, stream: String) async throws -> Response {
        let endpoint: WebRTCEndpoint
        switch self.endpoint {
        case .success(let running): endpoint = running
        case .failure(let failure): return Self.text("WebRTC is unavailable here: \(failure)\n", .serviceUnavailable)
        }
        let type = request.headers[.contentType]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
        guard type == "application/sdp" else {
            return Self.text("a WHEP offer is Content-Type: application/sdp\n", .unsupportedMediaType)
        }
        let body: ByteBuffer
        do { body = try await request.body.collect(upTo: Self.maxOfferBytes) } catch {
            return Self.text("an offer is at most \(Self.maxOfferBytes) bytes\n", .contentTooLarge)
        }
        guard let (host, port) = candidate(authority: request.head.authority) else {
            return Self.text("no IP address to offer as the WebRTC candidate: set webrtc-public-address\n", .serviceUnavailable)
        }
        switch await endpoint.answer(offer: body, stream: stream, candidateHost: host, candidatePort: port,
                                     client: ConnectionPeer.current?.group) {
        case .success(let answer):
            var headers = HTTPFields()
            headers[.contentType] = "application/sdp"
            headers[.cacheControl] = "no-store"
            let name = stream.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? stream
            headers[.location] = "/whep/\(name)/\(answer.sessionID)"
            return Response(status: .created, headers: headers, body: .init(byteBuffer: ByteBuffer(string: answer.sdp)))
        case .failure(let refusal):
            return Self.text(refusal.message + "\n", HTTPResponse.Status(code: refusal.status))
        }
    }

    /// The address peers send to: `webrtc-public-address`, else the bind
    /// address when it is one, else the host the request was sent to when
    /// it is an IP address (a name is not resolved).
    func candidate(authority: String?) -> (host: String, port: Int?)? {
        if let publicAddress {
            let colons = publicAddress.filter { $0 == ":" }.count
            if publicAddress.hasPrefix("[") || colons == 1, let parsed = Camflow.BindAddress(parsing: publicAddress) {
                return (parsed.host, parsed.port)
            }
            return (publicAddress, nil)
        }
        if !["0.0.0.0", "::", ""].contains(bindHost), Self.isIPAddress(bindHost) { return (bindHost, nil) }
        guard let authority else { return nil }
        var host = Substring(authority)
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            host = host[host.index(after: host.startIndex)..<close]
        } else if let colon = host.lastIndex(of: ":") {
            host = host[..<colon]
        }
        return Self.isIPAddress(String(host)) ? (String(host), nil) : nil
    }

    static func isIPAddress(_ text: String) -> Bool {
        (try? SocketAddress(ipAddress: text, port: 0)) != nil
    }

    private static func text(_ text: String, _ status: HTTPResponse.Status) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
