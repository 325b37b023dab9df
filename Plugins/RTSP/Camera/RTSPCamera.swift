import Camflow
import Logging
import NIOCore
import RTSPProtocol
import Synchronization

/// `rtsp-camera`: any RTSP camera as a source of fragmented-MP4 bytes, the
/// same bytes `instar-camera` emits, so a pipeline changes only its source.
struct RTSPCamera: Node {
    static let type = NodeType(
        name: "rtsp-camera",
        summary: "Pulls H.264/H.265 (+ AAC) from an RTSP camera and emits fragmented-MP4 bytes, reconnecting on failure.",
        details: """
            Connects to an rtsp:// URL (OPTIONS, DESCRIBE, SETUP of every H.264, H.265 and AAC track, PLAY), with \
            Basic or Digest authentication (a 401 is answered once, a stale nonce up to 3 times), RTP over the RTSP \
            connection ('transport: tcp', interleaved) or over UDP ('transport: udp': an RTP and an RTCP port per track; \
            datagrams from anyone but the server are ignored). Redirects are followed at most 3 times, and only to the \
            same host while credentials are set. Keep-alives (GET_PARAMETER when the server lists it, else OPTIONS) go \
            at half the session timeout. Emits fMP4 BYTES exactly as instar-camera does: an init segment (ftyp + moov \
            built from the SDP's or the stream's parameter sets; size from the SPS) and then one moof + mdat per video \
            frame, the audio that came meanwhile in the same fragment; put mp4-parse after it, the one place that turns \
            bytes into init/fragment packets. RTP is reordered within 32 packets; a lost packet drops its frame and \
            the frames up to the next keyframe (counted as drops, 'frame-dropped' events); timestamps are unwrapped \
            and video decode times rebuilt from presentation times (B-frames). An answer slower than \
            'response-timeout' during the handshake, no media for 'idle-timeout', or a broken answer ends the \
            connection; it reconnects with exponential backoff and jitter like instar-camera, and the first packet \
            after a reconnect is flagged as a discontinuity. After 'auth-retry-after' refused logins in a row it \
            tries only every 'auth-retry-interval'. Emits events: connected, disconnected (reason), auth-failed, \
            frame-dropped, timestamp-jump, bad-packet, bad-parameter-sets (the last four: the first of a kind at \
            once, then at most one per kind every 10 s, with a count). On stop it sends TEARDOWN and closes. Passwords never appear in logs, events or errors.
            """,
        options: [
            OptionSpec("url", .string, "Camera URL: rtsp://host[:port]/path; user:password@ in it is taken as the credentials."),
            OptionSpec("username", .string, "User name for the camera."),
            OptionSpec("password", .secret, "Password for the camera; never printed. Use ${VAR}."),
            OptionSpec("transport", .choice(["tcp", "udp"]), default: "tcp",
                       "RTP inside the RTSP connection (tcp, through any NAT) or on UDP ports of its own (udp, less latency on a LAN)."),
            OptionSpec("idle-timeout", .duration, default: "10s", above: "0s", "No media for this long: the connection is dead, reconnect."),
            OptionSpec("connect-timeout", .duration, default: "10s", above: "0s", "Give up a TCP connect after this long."),
            OptionSpec("response-timeout", .duration, default: "10s", above: "0s",
                       "Longest wait for each answer of the handshake (a server trickling its headers is cut off)."),
            OptionSpec("stream", .string, "Stream name of the packets; the node id when unset."),
        ] + CameraReconnectLoop.options,
        accepts: [],
        emits: .kinds([.bytes, .event]), reportsConnection: true,
        make: { options in try RTSPCamera(options) })

    let url: CameraURL
    let username: String?
    let password: String?
    let udp: Bool
    let idleTimeout: Duration
    let connectTimeout: Duration
    let responseTimeout: Duration
    let reconnection: CameraReconnectLoop
    let stream: String

    init(_ options: NodeOptions) throws {
        guard let text = try options.ifSet("url", options.string) else { throw options.error("needs 'url' (rtsp://host/path)") }
        do {
            url = try CameraURL.parse(text)
        } catch {
            throw options.error("'url': \(error.reason)", option: "url")
        }
        username = try options.ifSet("username", options.string) ?? url.username
        password = try options.ifSet("password", options.string) ?? url.password
        udp = try options.string("transport") == "udp"
        idleTimeout = try options.duration("idle-timeout")
        connectTimeout = try options.duration("connect-timeout")
        responseTimeout = try options.duration("response-timeout")
        reconnection = try CameraReconnectLoop(options)
        stream = try options.ifSet("stream", options.string) ?? options.nodeID
    }

    func run(_ context: NodeContext) async throws {
        let counters = CameraCounters()
        try await reconnection.run(context, endpoint: "\(url)") { discontinuity in
            await session(context, counters: counters, discontinuity: discontinuity)
        } sessionEnded: {
            // A burst of problems shorter than the log's interval is summed up, not left at its first line.
            for (kind, told) in counters.owed() {
                context.logger.warning("camera \(url): \(kind): \(told.sinceLastTold) more since the last line (\(told.total) in all)")
            }
        } emit: { name, fields in
            await counters.emit(context, stream, name, fields)
        }
    }

    typealias SessionEnd = CameraSessionEnd
}

/// Sequence numbers and event rate limits that live across sessions.
final class CameraCounters: Sendable {
    let bytesSequence = Atomic<UInt64>(0)
    let eventSequence = Atomic<UInt64>(0)
    /// Problems of each kind seen so far: the first is told (logged and sent as an event) at
    /// once, then at most one per kind every 10 s with the count.
    let problems = Mutex<[String: OccasionalReport]>([:])

    func emit(_ context: NodeContext, _ stream: String, _ name: String, _ fields: [(key: String, value: EventValue)]) async {
        let sequence = eventSequence.add(1, ordering: .relaxed).oldValue
        await context.emit(.event(Event(name, fields), stream: stream, sequence: sequence))
    }

    /// The problems of each kind since their last line, owed at the end of a session.
    func owed() -> [(kind: String, told: OccasionalReport.Told)] {
        problems.withLock { reports in
            reports.keys.sorted().compactMap { kind in reports[kind]?.owed().map { (kind, $0) } }
        }
    }

    /// Counts a problem at `now`; what to tell when this one is to be told.
    func admit(_ kind: String, now: ContinuousClock.Instant) -> OccasionalReport.Told? {
        problems.withLock { reports in
            // The kinds are the assembler's own names, a handful: the table stays small.
            reports[kind, default: OccasionalReport()].count(now: now)
        }
    }
}
