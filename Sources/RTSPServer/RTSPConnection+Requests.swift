import Camflow
import NIOCore
import NIOPosix
import RTSPProtocol

/// The answers: authentication first, then what the session's state machine decided.
extension RTSPConnection {
    func answer(_ request: RTSPRequest, _ context: ChannelHandlerContext) {
        var headers = RTSPHeaders()
        headers.set("Server", "camflow")
        if request.method != .options, let auth = server.authentication {
            // A peer that sent wrong credentials too often in the window is refused without a check.
            guard !server.credentialFailures.isLockedOut(handle.group) else {
                server.metrics.refused("credential-lockout")
                send(RTSPResponse(answering: request, status: 403, headers: headers), context)
                closed = true
                context.close(promise: nil)
                return
            }
            let outcome = auth.check(request, now: server.durationNow)
            guard outcome == nil else {
                if outcome == .denied, request.headers["Authorization"] != nil { noteCredentialFailure() }
                server.metrics.refused("unauthorized")
                var random = SystemRandomNumberGenerator()
                headers.setChallenges(auth.challenges(now: server.durationNow, random: &random, stale: outcome == .stale))
                send(RTSPResponse(answering: request, status: 401, headers: headers), context)
                return
            }
        }
        let decision = session.receive(request, now: server.durationNow, newID: RTSPMediaServer.newSessionID)
        if let value = session.sessionHeader, decision != .options { headers.set("Session", value) }
        switch decision {
        case .options:
            headers.setPublic(RTSPServerSession.publicMethods)
            send(RTSPResponse(answering: request, status: 200, headers: headers), context)
        case .describe:
            let target = RTSPTarget(uri: request.uri)
            let description = target.map { server.hub.describe(stream: $0.stream, origin: "0.0.0.0") } ?? .unknown
            guard target?.track == nil, case .sdp(let sdp) = description else {
                if case .notReady = description { headers.set("Retry-After", "1") }
                let status = if case .notReady = description { 503 } else { 404 }
                send(RTSPResponse(answering: request, status: status, headers: headers), context)
                return
            }
            headers.set("Content-Type", "application/sdp")
            headers.set("Content-Base", request.uri.hasSuffix("/") ? request.uri : request.uri + "/")
            send(RTSPResponse(answering: request, status: 200, headers: headers, body: ByteBuffer(string: sdp)), context)
        case .setup(let offered):
            setup(request, offered, headers, context)
        case .play:
            play(request, headers, context)
        case .teardown:
            stopPlaying()
            stream = nil
            send(RTSPResponse(answering: request, status: 200, headers: headers), context)
        case .keepAlive:
            send(RTSPResponse(answering: request, status: 200, headers: headers), context)
        case .reject(let status):
            send(RTSPResponse(answering: request, status: status, headers: headers), context)
        }
    }

    private func setup(_ request: RTSPRequest, _ offered: [RTSPTransport], _ headers: RTSPHeaders, _ context: ChannelHandlerContext) {
        guard let target = RTSPTarget(uri: request.uri), let count = server.hub.trackCount(stream: target.stream) else {
            send(RTSPResponse(answering: request, status: 404, headers: headers), context)
            return
        }
        let track = target.track ?? 0
        guard track < count, target.track != nil || count == 1 else {
            send(RTSPResponse(answering: request, status: target.track == nil ? 459 : 404, headers: headers), context)
            return
        }
        // One stream per session, and no new track once playing.
        guard stream == nil || stream == target.stream, output == nil else {
            send(RTSPResponse(answering: request, status: 455, headers: headers), context)
            return
        }
        choose(request, offered[...], track: track, stream: target.stream, headers, context)
    }

    /// Takes the first of the client's transports (in its order of preference) the server can give. A UDP one
    /// whose pair cannot be bound (the `udp-ports` range full) passes to the next: RFC 2326 §12.39 lists
    /// alternatives for this. None left: 461, also when the range was full, since that is what makes players
    /// that try UDP first (ffmpeg's default) fall back to TCP; 453 would end their attempt.
    private func choose(_ request: RTSPRequest, _ offered: ArraySlice<RTSPTransport>, track: Int, stream: String,
                        _ headers: RTSPHeaders, _ context: ChannelHandlerContext) {
        var headers = headers
        let ssrc = server.hub.ssrc(stream: stream, track: track)
        let taken = Set(transports.filter { $0.key != track }.values.compactMap { transport -> [Int]? in
            if case .interleaved(let rtp, let rtcp) = transport { return [Int(rtp), Int(rtcp)] } else { return nil }
        }.joined())
        for (index, choice) in zip(offered.indices, offered) where choice.unicast {
            if choice.lower == .tcp {
                let channels = choice.interleaved ?? (2 * track)...(2 * track + 1)
                guard channels.lowerBound >= 0, channels.upperBound <= 255, !taken.contains(channels.lowerBound),
                      !taken.contains(channels.upperBound) else { continue }
                replace(track, with: .interleaved(rtp: UInt8(channels.lowerBound), rtcp: UInt8(channels.upperBound)))
                self.stream = stream
                headers.setTransport([RTSPTransport(lower: .tcp, interleaved: channels, ssrc: ssrc)])
                send(RTSPResponse(answering: request, status: 200, headers: headers), context)
                return
            }
            if let ports = server.ports, let clientPort = choice.clientPort, let remote = remoteAddress {
                busy = true
                let headers = headers
                let rest = offered[(index + 1)...]
                let loop = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                server.bindUDP(ports: ports, on: context.eventLoop, client: remote, clientPort: clientPort)
                    .whenComplete { result in
                        let (connection, context) = loop.value
                        connection.busy = false
                        guard case .success(let pair) = result, !connection.closed else {
                            if case .success(let pair) = result { connection.server.closeUDP(pair) }
                            guard !connection.closed else { return }
                            connection.server.metrics.refused("udp-ports-full")
                            connection.choose(request, rest, track: track, stream: stream, headers, context)
                            connection.process(context)
                            return
                        }
                        connection.replace(track, with: .udp(pair))
                        connection.stream = stream
                        var headers = headers
                        headers.setTransport([RTSPTransport(lower: .udp, clientPort: clientPort,
                                                            serverPort: pair.serverPort...(pair.serverPort + 1), ssrc: ssrc)])
                        connection.send(RTSPResponse(answering: request, status: 200, headers: headers), context)
                        connection.process(context)
                    }
                return
            }
        }
        send(RTSPResponse(answering: request, status: 461, headers: headers), context)
    }

    /// Counts a wrong password of this peer; logs its first of a window and its lock-out, not every guess.
    private func noteCredentialFailure() {
        switch server.credentialFailures.note(handle.group) {
        case .first:
            server.logger.notice("RTSP: refused wrong credentials from \(handle.group)")
        case .lockedOut:
            server.logger.warning("RTSP: \(handle.group) sent wrong credentials \(CredentialFailures().maxFailures) times within a minute: refused (403) until the minute ends")
        case .counted:
            break
        }
    }

    func replace(_ track: Int, with transport: TrackTransport) {
        if case .udp(let old)? = transports[track] { server.closeUDP(old) }
        transports[track] = transport
    }

    private func play(_ request: RTSPRequest, _ headers: RTSPHeaders, _ context: ChannelHandlerContext) {
        var headers = headers
        guard let stream, !transports.isEmpty else {
            send(RTSPResponse(answering: request, status: 455, headers: headers), context)
            return
        }
        headers.set("Range", "npt=now-")
        if output != nil {
            send(RTSPResponse(answering: request, status: 200, headers: headers), context)
            return
        }
        let gated = transports.keys.contains { server.hub.isVideo(stream: stream, track: $0) }
        let client = ClientOutput(id: handle.id, stream: stream, remote: handle.group, connection: context.channel,
                                  transports: transports, queueLimit: server.configuration.clientQueueBytes,
                                  udpRate: server.configuration.udpJoinRate, gated: gated,
                                  trackCount: server.hub.trackCount(stream: stream) ?? 0)
        guard let start = server.hub.join(stream: stream, client: client, tracks: Array(transports.keys)) else {
            send(RTSPResponse(answering: request, status: 404, headers: headers), context)
            return
        }
        output = client
        server.metrics.clientJoined(stream: stream, client, peer: remoteAddress, wallNow: server.clock.wallNow)
        let base = RTSPTarget.base(of: request.uri, stream: stream)
        headers.setRTPInfo(start.tracks.sorted { $0.key < $1.key }.map { track, position in
            RTPInfo(url: "\(base)/trackID=\(track)", sequence: position.sequence, rtpTime: position.timestamp)
        })
        send(RTSPResponse(answering: request, status: 200, headers: headers), context)
        let now = server.clock.now
        if let told = server.playsTold.withLock({ $0.count(now: now) }) {
            server.logger.info("RTSP client playing", metadata: ["stream": "\(stream)", "remote": "\(handle.group)",
                                                                "transport": "\(client.transportName)",
                                                                "plays-since-last-line": "\(told.sinceLastTold)"])
        }
        client.enqueue(start.gop)
    }
}

/// What a request URI names: `rtsp://host[:port]/{stream}[/trackID=N]` or the same path alone.
struct RTSPTarget: Equatable {
    var stream: String
    var track: Int?

    init?(uri: String) {
        var path = Substring(uri)
        if let scheme = path.range(of: "://") {
            path = path[scheme.upperBound...]
            guard let slash = path.firstIndex(of: "/") else { return nil }
            path = path[slash...]
        }
        if let query = path.firstIndex(where: { $0 == "?" || $0 == "#" }) { path = path[..<query] }
        var parts = path.split(separator: "/")
        if let last = parts.last, last.hasPrefix("trackID=") {
            // Only the digits the server writes in its SDP (no leading zeros, no sign): one track has one URL.
            let digits = last.dropFirst("trackID=".count)
            guard let number = Int(digits), (0..<64).contains(number), String(number) == digits else { return nil }
            track = number
            parts.removeLast()
        }
        guard !parts.isEmpty else { return nil }
        stream = parts.joined(separator: "/")
        guard stream.utf8.count <= 256 else { return nil }
    }

    /// The stream's URL as the client wrote it (absolute or not), without a track or a trailing slash.
    static func base(of uri: String, stream: String) -> String {
        var text = uri
        if let range = text.range(of: "/trackID=", options: .backwards) { text = String(text[..<range.lowerBound]) }
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }
}
