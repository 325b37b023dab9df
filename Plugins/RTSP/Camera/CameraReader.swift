import Camflow
import NIOCore
import RTSPProtocol

/// Reads one RTSP connection: answers feed the client state machine, whose
/// requests go out; after PLAY, interleaved RTP goes to the media pump
/// (TCP) or the UDP ports' stream is told to start.
struct CameraReader {
    let camera: RTSPCamera
    let target: CameraURL
    let state: CameraSessionState
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    let ports: CameraUDPPorts?
    let counters: CameraCounters
    let discontinuity: Bool
    let context: NodeContext
    private var parser = RTSPParser()
    private var pump: CameraMediaPump?
    private var channels: [UInt8: Int] = [:]
    private var random = SystemRandomNumberGenerator()

    init(camera: RTSPCamera, target: CameraURL, state: CameraSessionState, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
         ports: CameraUDPPorts?, counters: CameraCounters, discontinuity: Bool, context: NodeContext) {
        self.camera = camera
        self.target = target
        self.state = state
        self.outbound = outbound
        self.ports = ports
        self.counters = counters
        self.discontinuity = discontinuity
        self.context = context
    }

    mutating func run(_ inbound: NIOAsyncChannelInboundStream<ByteBuffer>) async throws -> RTSPCamera.ConnectionOutcome? {
        let start = state.client.withLock { $0.start(random: &random) }
        if let outcome = try await perform(start) { return outcome }
        for try await chunk in inbound {
            parser.append(chunk)
            while true {
                let frame: RTSPFrame?
                do {
                    frame = try parser.next()
                } catch {
                    throw CameraSessionError("\(target) sent a broken RTSP message: \(error)")
                }
                guard let frame else { break }
                switch frame {
                case .response(let response):
                    state.answered()
                    let action = state.client.withLock { $0.receive(response, random: &random) }
                    if let outcome = try await perform(action) { return outcome }
                case .interleaved(let channel, let payload):
                    if let track = channels[channel] {
                        await pump?.take(.packet(track: track, payload))
                    } else if channel % 2 == 1, let track = channels[channel - 1], CameraMediaInput.isBye(payload) {
                        await pump?.take(.bye(track: track))
                    }
                case .request(let request):
                    // A server's own request (a keep-alive of its own, say): answered, never acted on.
                    let known: Set<RTSPMethod> = [.options, .getParameter, .setParameter]
                    try await outbound.write(RTSPResponse(answering: request, status: known.contains(request.method) ? 200 : 501).bytes)
                }
            }
        }
        if Task.isCancelled { return .ended(.stopped) }
        return .ended(.ended(reason: "\(target) closed the connection", deliveredMedia: state.deliveredMedia))
    }

    private mutating func perform(_ action: RTSPClientSession.Action) async throws -> RTSPCamera.ConnectionOutcome? {
        switch action {
        case .send(let request):
            state.sent(request, awaitAnswer: true)
            try await outbound.write(request.bytes)
            return nil
        case .playing(let rtpInfo):
            try await play(rtpInfo)
            return nil
        case .redirect(let location):
            return .redirect(location, state.client.withLock { $0 })
        case .failed(let error):
            throw CameraSessionError("\(target): \(error)", unauthorized: error == .unauthorized)
        case .none:
            return nil
        }
    }

    /// PLAY was answered: the tracks camflow records (the first video and the first audio) and where their RTP comes.
    private mutating func play(_ rtpInfo: [RTPInfo]) async throws {
        let tracks = state.client.withLock { $0.tracks }
        var chosen: [CameraTrack] = []
        var rtpTimes: [UInt32?] = []
        var mapping: [Int: Int] = [:]
        for (index, track) in tracks.enumerated() {
            let cameraTrack: CameraTrack
            do {
                cameraTrack = try CameraTrack(track.media)
            } catch {
                await tell("bad-parameter-sets", "\(error)")
                throw CameraSessionError("\(target): \(error)")
            }
            guard !chosen.contains(where: { $0.isVideo == cameraTrack.isVideo }) else { continue }
            mapping[index] = chosen.count
            chosen.append(cameraTrack)
            rtpTimes.append(rtpInfo.first { $0.url == track.url || track.url.hasSuffix($0.url) || $0.url.hasSuffix(track.url) }?.rtpTime)
            if let ports {
                ports.setServerPort(track.transport?.serverPort?.lowerBound, track: index)
            } else {
                let channel = track.transport?.interleaved?.lowerBound ?? 2 * index
                if let channel = UInt8(exactly: channel) { channels[channel] = index }
            }
        }
        guard !chosen.isEmpty else { throw CameraSessionError("\(target): no track camflow can record") }
        let assembler = RTPMediaAssembler(tracks: chosen, rtpTimes: rtpTimes)
        state.startedPlaying()
        context.stats.setConnected(true)
        context.logger.info("playing \(target): \(chosen.count) track(s) over \(ports == nil ? "TCP" : "UDP")")
        await counters.emit(context, camera.stream, "connected", [("url", .string("\(target)"))])
        if let ports {
            ports.continuation.yield(.play(assembler, mapping: mapping))
        } else {
            var pump = CameraMediaPump(camera: camera, counters: counters, state: state, discontinuity: discontinuity, context: context)
            await pump.take(.play(assembler, mapping: mapping))
            self.pump = pump
        }
    }

    private func tell(_ kind: String, _ reason: String) async {
        await CameraMediaPump.tell(kind, reason, camera: camera, counters: counters, context: context)
    }
}

/// Hands a session's RTP to its assembler and the MP4 bytes downstream.
struct CameraMediaPump {
    static let maxEarlyPackets = 256
    let camera: RTSPCamera
    let counters: CameraCounters
    let state: CameraSessionState
    let context: NodeContext
    private var first: Bool
    private var assembler: RTPMediaAssembler?
    private var mapping: [Int: Int] = [:]
    /// Frames the depacketizers passed over awaiting a keyframe, as counted so far.
    private var skipped = 0
    /// UDP packets that came before PLAY's answer was read, bounded.
    private var early: [(Int, ByteBuffer)] = []

    init(camera: RTSPCamera, counters: CameraCounters, state: CameraSessionState, discontinuity: Bool, context: NodeContext) {
        self.camera = camera
        self.counters = counters
        self.state = state
        self.context = context
        first = discontinuity
    }

    mutating func take(_ input: CameraMediaInput) async {
        switch input {
        case .play(let assembler, let mapping):
            self.assembler = assembler
            self.mapping = mapping
            let waiting = early
            early = []
            for (track, bytes) in waiting { await take(.packet(track: track, bytes)) }
        case .packet(let track, let bytes):
            guard assembler != nil else {
                if early.count < Self.maxEarlyPackets { early.append((track, bytes)) }
                return
            }
            guard let index = mapping[track], var assembler else { return }
            self.assembler = nil // taken out while it works, so its buffers are not copied on write
            let outputs = assembler.receive(bytes, track: index)
            let skipped = assembler.framesSkipped
            self.assembler = assembler
            if skipped > self.skipped {
                // Frames after a loss, up to the next keyframe, are drops too.
                context.stats.countDropped(skipped - self.skipped)
                self.skipped = skipped
            }
            await deliver(outputs)
        case .bye(let track):
            guard var assembler else { return }
            self.assembler = nil
            let outputs = assembler.flush()
            self.assembler = assembler
            context.logger.info("camera \(camera.url) ended track \(track) (RTCP BYE)")
            await deliver(outputs)
        }
    }

    private mutating func deliver(_ outputs: [RTPMediaAssembler.Output]) async {
        for output in outputs {
            switch output {
            case .initSegment(let bytes), .fragment(let bytes):
                state.media()
                let sequence = counters.bytesSequence.add(1, ordering: .relaxed).oldValue
                await context.emit(Packet(kind: .bytes, stream: camera.stream, sequence: sequence, payload: bytes, discontinuity: first))
                first = false
            case .problem(let kind, let reason):
                if kind == "frame-dropped" { context.stats.countDropped() }
                await Self.tell(kind, reason, camera: camera, counters: counters, context: context)
            }
        }
    }

    /// A problem is counted; the first of its kind is logged and sent as an event, then at most
    /// one every 10 s with the count (a hostile server repeating one every packet wrote 780 lines a second).
    static func tell(_ kind: String, _ reason: String, camera: RTSPCamera, counters: CameraCounters, context: NodeContext) async {
        guard let told = counters.admit(kind, now: context.clock.now) else { return }
        context.logger.warning("camera \(camera.url): \(kind): \(reason) (\(told.total) so far, \(told.sinceLastTold) since the last line)")
        await counters.emit(context, camera.stream, kind, [("reason", .string(reason)), ("count", .int(Int64(clamping: told.total)))])
    }
}
