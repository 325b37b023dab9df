import Camflow
import Logging
import NIOCore
import WebRTCProtocol

/// Everything an endpoint holds, confined to its UDP channel's event loop:
/// sessions by id, by local ufrag and by authenticated address, each
/// stream's media, the timers. Only a STUN request that passed its
/// session's check makes an address known; DTLS and RTCP from any other
/// address are dropped before any parsing or crypto.
final class WebRTCEndpointCore {
    let configuration: WebRTCEndpoint.Configuration
    let logger: Logger
    let clock: any PipelineClock
    private let origin: ContinuousClock.Instant
    let context: DTLSContext
    var channel: (any Channel)?
    var port = 0
    private(set) var peers: [String: WebRTCPeer] = [:]
    private var byUfrag: [String: WebRTCPeer] = [:]
    private var byAddress: [SocketAddress: WebRTCPeer] = [:]
    var streams: [String: WebRTCStreamMedia] = [:]
    var stats = WebRTCEndpointStats()
    private var random = SystemRandomNumberGenerator()
    private var sweepTimer: Scheduled<Void>?
    private var checkBudget: STUNCheckBudget<String>
    private let allocator = ByteBufferAllocator()

    init(configuration: WebRTCEndpoint.Configuration, context: DTLSContext, logger: Logger, clock: any PipelineClock) {
        self.configuration = configuration
        self.context = context
        self.logger = logger
        self.clock = clock
        origin = clock.now
        checkBudget = STUNCheckBudget(limit: configuration.stunChecksPerSecondPerAddress)
    }

    /// The endpoint's monotonic time, as ``ICELiteState`` counts it.
    var now: Duration { origin.duration(to: clock.now) }

    // MARK: WHEP

    func answer(offer body: ByteBuffer, stream: String, candidateHost: String,
                candidatePort: Int?, client: String? = nil) -> Result<WHEPAnswerResult, WHEPRefusal> {
        switch admission(stream: stream, client: client) {
        case .refuse(let refusal): return .failure(refusal)
        case .admit(let stale): if let stale { close(stale, reason: "its slot went to a newer offer (not connected within \(configuration.pendingGrace.shortDescription))") }
        }
        guard let media = streams[stream] else { return .failure(WHEPRefusal(status: 404, "no stream '\(stream)'")) }
        let negotiation: WHEPNegotiation
        do {
            let offer = try SDPOffer(parsing: body)
            let profile = media.track.profileBytes.map { H264ProfileLevel(profileIDC: $0.0, constraints: $0.1, levelIDC: $0.2) }
                ?? H264ProfileLevel(profileIDC: 0x42, constraints: 0xE0, levelIDC: 0x1F)
            negotiation = try WHEPNegotiation(offer: offer, codec: .h264(profile))
        } catch {
            return .failure(WHEPRefusal(status: error.httpStatus, "cannot answer this offer: \(error)"))
        }
        guard let remoteFingerprint = DTLSFingerprint(sha256: negotiation.remoteFingerprint) else {
            return .failure(WHEPRefusal(status: 400, "the offer's sha-256 fingerprint is not 32 bytes"))
        }
        let candidate: WHEPCandidate
        do { candidate = try WHEPCandidate(address: candidateHost, port: UInt16(clamping: candidatePort ?? port)) } catch {
            return .failure(WHEPRefusal(status: 503, "no IP address to offer as the WebRTC candidate ('\(UntrustedText.printable(candidateHost, limit: 64))'); set webrtc-public-address"))
        }
        var credentials = ICECredentials.random(using: &random)
        while byUfrag[credentials.ufrag] != nil { credentials = ICECredentials.random(using: &random) }
        let id = (0..<2).map { _ in
            let word: UInt64 = random.next()
            return String(word, radix: 16).leftPadded(to: 16)
        }.joined()
        let peer = WebRTCPeer(id: id, stream: stream, client: client,
                              check: STUNRequestCheck(localUfrag: credentials.ufrag, localPassword: credentials.password,
                                                      remoteUfrag: negotiation.remoteUfrag),
                              answeredAt: now, remoteFingerprint: remoteFingerprint, payloadType: negotiation.payloadType,
                              ringCapacity: configuration.retransmissionPackets, random: &random)
        let sdp: String
        do {
            sdp = try negotiation.answer(WHEPAnswerParameters(
                sessionID: random.next(), credentials: credentials, fingerprint: context.certificate.fingerprint.sha256,
                candidates: [candidate], ssrc: peer.ssrc, cname: "camflow-\(id.prefix(8))", msid: ("camflow", "video"),
                sessionAttributes: media.mediaClock.map { clock in
                    [CamflowMediaClock(ssrc: peer.ssrc, rtpTimestamp: peer.timestampBase &+ WebRTCStreamMedia.ticks(clock.time),
                                       mediaNanoseconds: clock.source).attribute]
                } ?? []))
        } catch {
            return .failure(WHEPRefusal(status: 500, "cannot write the answer: \(error)"))
        }
        peers[id] = peer
        byUfrag[credentials.ufrag] = peer
        stats.sessions = peers.count
        logger.info("WebRTC session \(id.prefix(8)) for stream '\(UntrustedText.printable(stream, limit: 100))': answered, payload type \(negotiation.payloadType), candidate \(candidate.address):\(candidate.port)")
        return .success(WHEPAnswerResult(sdp: sdp, sessionID: id))
    }

    func close(_ id: String, reason: String) {
        guard let peer = peers.removeValue(forKey: id) else { return }
        // Told to the peer (a DELETE, expired consent, shutdown): it stops at once instead of
        // waiting for its own consent checks to fail.
        if let dtls = peer.dtls, let address = peer.mediaAddress {
            dtls.close()
            for output in dtls.outputDatagrams(allocator: allocator) { write(output, to: address) }
            channel?.flush()
        }
        byUfrag[peer.check.localUfrag] = nil
        for address in peer.addresses where byAddress[address] === peer { byAddress[address] = nil }
        peer.dtlsTimer?.cancel()
        stats.sessions = peers.count
        stats.connectedPeers = peers.values.filter(\.isConnected).count
        logger.info("WebRTC session \(id.prefix(8)) closed: \(reason) (\(peer.packetCount) RTP packets sent, \(peer.resent) resent for NACKs)")
    }

    // MARK: Datagrams

    func receive(_ envelope: AddressedEnvelope<ByteBuffer>) {
        let source = envelope.remoteAddress
        let datagram = envelope.data
        switch WebRTCDemux.classify(datagram) {
        case .stun: receiveSTUN(datagram, from: source)
        case .dtls: receiveDTLS(datagram, from: source)
        case .rtcp: receiveRTCP(datagram, from: source)
        case .rtp, .other: stats.datagramsDropped &+= 1
        }
    }

    private func receiveSTUN(_ datagram: ByteBuffer, from source: SocketAddress) {
        // The ufrag finds the session before any HMAC: a request for no session costs a parse.
        guard let message = try? STUNMessage(parsing: datagram), let ufrag = STUNRequestCheck.localUfrag(of: message),
              let peer = byUfrag[String(ufrag)], let mapped = STUNAddress(source) else {
            stats.datagramsDropped &+= 1
            return
        }
        // A flood under a known ufrag with a wrong password would cost an HMAC each: budgeted per session and
        // IP, so junk under one session's ufrag cannot use up the checks of another viewer behind the same IP.
        guard checkBudget.admit("\(ufrag) \(source.ipAddress ?? "?")", at: now) else {
            stats.datagramsDropped &+= 1
            stats.stunChecksRateLimited &+= 1
            return
        }
        let checked: STUNCheckedRequest
        do { checked = try peer.check.check(message) } catch {
            stats.datagramsDropped &+= 1
            return
        }
        if let media = peer.mediaAddress {
            // Connected: media stays where the handshake completed; a check from elsewhere is answered, nothing more.
            if source == media { peer.lastConsent = now }
        } else if byAddress[source].map({ $0 !== peer && $0.mediaAddress == source }) != true {
            // (An address another session's media goes to stays that session's: checks prove a password, not an address.)
            let change = peer.ice.receive(checked, from: source, at: now)
            if let forgotten = peer.authenticated(source), byAddress[forgotten] === peer { byAddress[forgotten] = nil }
            byAddress[source] = peer
            if case .selected(let address) = change {
                logger.debug("WebRTC session \(peer.id.prefix(8)): checked from \(Self.describe(address))\(peer.ice.nominated ? " (nominated)" : "")")
            }
        }
        write(peer.check.successResponse(to: checked, from: mapped), to: source)
        channel?.flush()
        stats.stunAnswered &+= 1
    }

    private func receiveDTLS(_ datagram: ByteBuffer, from source: SocketAddress) {
        guard let peer = byAddress[source], peer.dtlsAddress.map({ $0 == source }) ?? true else {
            stats.datagramsDropped &+= 1
            return
        }
        let dtls: DTLSTransport
        if let existing = peer.dtls {
            dtls = existing
        } else {
            do { dtls = try DTLSTransport(context: context, mtu: UInt16(configuration.mtu)) } catch {
                logger.error("WebRTC session \(peer.id.prefix(8)): \(error)")
                return close(peer.id, reason: "\(error)")
            }
            peer.dtls = dtls
            peer.dtlsStartedAt = now
            peer.dtlsAddress = source
        }
        let state = dtls.receive(datagram)
        for output in dtls.outputDatagrams(allocator: allocator) { write(output, to: source) }
        channel?.flush()
        switch state {
        case .failed(let reason):
            logger.notice("WebRTC session \(peer.id.prefix(8)): DTLS failed: \(UntrustedText.printable(reason, limit: 200))")
            close(peer.id, reason: "DTLS failed")
            return
        case .closed:
            // A browser closing its RTCPeerConnection says so: an ordinary end, not a failure.
            close(peer.id, reason: "the peer closed DTLS (close_notify)")
            return
        case .established where !peer.isConnected:
            do {
                guard try peer.key(dtls, from: source, at: now) else {
                    stats.fingerprintMismatches &+= 1
                    logger.notice("WebRTC session \(peer.id.prefix(8)): the DTLS certificate's fingerprint is not the offer's: dropped")
                    return close(peer.id, reason: "fingerprint mismatch")
                }
            } catch {
                logger.error("WebRTC session \(peer.id.prefix(8)): cannot key SRTP: \(error)")
                return close(peer.id, reason: "\(error)")
            }
            stats.handshakesCompleted &+= 1
            stats.connectedPeers = peers.values.filter(\.isConnected).count
            logger.notice("WebRTC session \(peer.id.prefix(8)) connected from \(Self.describe(source)): DTLS fingerprint matches the offer's, SRTP keyed")
            sendGOP(to: peer)
        default:
            break
        }
        scheduleDTLSTimer(peer)
    }

    private func scheduleDTLSTimer(_ peer: WebRTCPeer) {
        peer.dtlsTimer?.cancel()
        peer.dtlsTimer = nil
        guard let dtls = peer.dtls, let timeout = dtls.timeout, let loop = channel?.eventLoop else { return }
        let id = peer.id
        peer.dtlsTimer = loop.assumeIsolated().scheduleTask(in: .nanoseconds(max(timeout.nanoseconds, 1_000_000))) { [weak self] in
            guard let self, let peer = self.peers[id], let dtls = peer.dtls else { return }
            dtls.handleTimeout()
            let address = peer.dtlsAddress
            for output in dtls.outputDatagrams(allocator: self.allocator) {
                if let address { self.write(output, to: address) }
            }
            self.channel?.flush()
            if case .failed = dtls.state { return self.close(id, reason: "DTLS handshake timed out") }
            self.scheduleDTLSTimer(peer)
        }
    }

    private func receiveRTCP(_ datagram: ByteBuffer, from source: SocketAddress) {
        // Only from where media goes: resends and GOPs go there, never to an address that did not ask.
        guard let peer = byAddress[source], peer.isConnected, peer.mediaAddress == source else {
            stats.datagramsDropped &+= 1
            return
        }
        let feedback = peer.receiveRTCP(datagram, at: now)
        // Consent (RFC 7675) from SRTCP too: a full-ICE agent need not check after nomination (libnice, so
        // GStreamer's webrtcbin, sends none), and a report keyed from the DTLS handshake proves more than ice-pwd.
        if feedback.authenticated { peer.lastConsent = now }
        if feedback.bye { return close(peer.id, reason: "the peer said BYE") }
        for packet in feedback.resend { write(packet, to: source) }
        stats.packetsResent &+= UInt64(feedback.resend.count)
        peer.resent += feedback.resend.count
        if feedback.keyframe {
            stats.pictureLossRequests &+= 1
            if peer.lastRefresh.map({ now - $0 >= .milliseconds(500) }) ?? true {
                peer.lastRefresh = now
                sendGOP(to: peer)
            }
        }
        channel?.flush()
    }

    // MARK: Media

    /// The stream's cached GOP to a peer that just connected or lost a picture; else it waits for the next keyframe.
    private func sendGOP(to peer: WebRTCPeer) {
        guard let media = streams[peer.stream], let first = media.gop.first, first.isKeyframe,
              let address = peer.mediaAddress else {
            peer.needsKeyframe = true
            return
        }
        peer.needsKeyframe = false
        let time = now
        for cached in media.gop {
            // A burst the socket cannot take waits for the next keyframe instead of piling up in NIO's queue.
            guard channel?.isWritable == true else {
                peer.needsKeyframe = true
                break
            }
            guard let frame = media.packetize(cached) else { continue }
            stats.rtpPacketsSent &+= UInt64(peer.send(frame.payloads, ticks: frame.ticks, at: time, allocator: allocator) {
                write($0, to: address)
            })
        }
        channel?.flush()
    }

    /// Sends one frame to every connected peer of the stream.
    func deliver(_ frame: WebRTCVideoFrame, stream: String) {
        guard let media = streams[stream] else { return }
        media.cache(frame)
        let viewers = peers.values.filter { $0.stream == stream && $0.isConnected }
        guard !viewers.isEmpty, let packetized = media.packetize(frame) else { return }
        let writable = channel?.isWritable ?? false
        let time = now
        for peer in viewers {
            guard let address = peer.mediaAddress else { continue }
            if !writable { peer.needsKeyframe = true }
            if peer.needsKeyframe {
                guard packetized.isKeyframe, writable else {
                    stats.framesSkipped &+= 1
                    continue
                }
                peer.needsKeyframe = false
            }
            stats.rtpPacketsSent &+= UInt64(peer.send(packetized.payloads, ticks: packetized.ticks, at: time, allocator: allocator) {
                write($0, to: address)
            })
            // Each peer's packets leave before the next peer's are made: the first peer does not wait for the last.
            channel?.flush()
            if frame.receivedAt != 0 { configuration.frameSent?(frame.receivedAt) }
        }
    }

    /// Queues a fragment's frames at their decode-time offsets from now, after what is already queued.
    func enqueue(_ frames: [WebRTCVideoFrame], stream: String) {
        guard let media = streams[stream], let first = frames.first, let last = frames.last else { return }
        media.mediaClock = (last.time, last.sourceTime)
        // Nobody watching: cached at once, no timers.
        if media.pending.isEmpty, !peers.values.contains(where: { $0.stream == stream && $0.isConnected }) {
            for frame in frames { media.cache(frame) }
            media.lastDue = now
            return
        }
        let start = max(now, media.lastDue)
        for frame in frames {
            guard media.pending.count < WebRTCStreamMedia.maxPending else {
                media.overflowedFrames &+= 1
                continue
            }
            let offset = Duration.nanoseconds(min(max(frame.time - first.time, 0), 10_000_000_000))
            media.pending.append((start + offset, frame))
            media.lastDue = start + offset
        }
        drain(stream)
    }

    private func drain(_ stream: String) {
        guard let media = streams[stream] else { return }
        media.pendingTimer?.cancel()
        media.pendingTimer = nil
        let time = now
        while let next = media.pending.first, next.due <= time + .milliseconds(1) {
            media.pending.removeFirst()
            deliver(next.frame, stream: stream)
        }
        guard let next = media.pending.first, let loop = channel?.eventLoop else { return }
        media.pendingTimer = loop.assumeIsolated().scheduleTask(in: .nanoseconds((next.due - time).nanoseconds)) { [weak self] in
            self?.drain(stream)
        }
    }

    // MARK: Housekeeping

    /// Once a second: consent and handshake deadlines, sender reports.
    func startSweeping() {
        guard let loop = channel?.eventLoop else { return }
        sweepTimer = loop.assumeIsolated().scheduleTask(in: .seconds(1)) { [weak self] in
            self?.sweep()
            self?.startSweeping()
        }
    }

    func stopSweeping() {
        sweepTimer?.cancel()
        for media in streams.values { media.pendingTimer?.cancel() }
        for peer in peers.values { peer.dtlsTimer?.cancel() }
    }

    func sweep() {
        let time = now
        for peer in Array(peers.values) {
            if let consent = peer.lastConsent, time - consent >= peer.ice.consentTimeout {
                stats.peersExpired &+= 1
                close(peer.id, reason: "consent expired (no STUN check or SRTCP from the media address for \(peer.ice.consentTimeout))")
                continue
            }
            // Checks alone never hold a slot: connected within the timeout of the answer, or gone.
            if !peer.isConnected, time - peer.ice.answeredAt >= configuration.handshakeTimeout {
                stats.peersExpired &+= 1
                let why = peer.ice.checks == 0 ? "no STUN check" : peer.dtls == nil ? "no DTLS" : "DTLS handshake not complete"
                close(peer.id, reason: "\(why) within \(configuration.handshakeTimeout) of the answer")
                continue
            }
            if let address = peer.mediaAddress, let report = peer.senderReport(wallNow: clock.wallNow, now: time) {
                write(report, to: address)
                stats.senderReports &+= 1
            }
        }
        channel?.flush()
    }

    static func describe(_ address: SocketAddress) -> String {
        STUNAddress(address)?.description ?? "\(address)"
    }

    private func write(_ packet: ByteBuffer, to address: SocketAddress) {
        channel?.write(AddressedEnvelope(remoteAddress: address, data: packet), promise: nil)
    }
}

extension String {
    func leftPadded(to width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
