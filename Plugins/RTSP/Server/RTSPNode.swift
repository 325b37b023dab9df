import Camflow
import Logging
import RTSPServer

/// `rtsp`: serves every stream that reaches it over RTSP (TCP interleaved
/// and UDP unicast), through ``RTSPMediaServer``.
struct RTSPNode: Node {
    static let type = NodeType(
        name: "rtsp",
        summary: "Serves every stream that reaches it as rtsp://HOST:PORT/STREAM (RTP over TCP or UDP), for NVRs and players.",
        details: """
            Takes init segments and fragments (from mp4-parse) and serves each stream at \
            'rtsp://HOST:PORT/STREAM', its tracks at '.../STREAM/trackID=N': OPTIONS, DESCRIBE (SDP from \
            the init segment, or the first keyframe for avc3/hev1), SETUP, PLAY, TEARDOWN, GET_PARAMETER. \
            H.264 (RFC 6184), H.265 (RFC 7798) and AAC (RFC 3640) are packetized once per stream at 'mtu', \
            with the parameter sets before every keyframe; RTP times follow the presentation times and \
            stay continuous across a looped file or a camera reconnecting. A client starts at the latest \
            keyframe; one that falls behind 'client-queue' bytes loses whole GOPs and never slows the \
            pipeline or other clients. RTP/AVP/TCP interleaved always; RTP/AVP over UDP when 'udp-ports' \
            gives a range (a joiner's first GOP paced at 'udp-join-rate'; what clients send to those ports \
            is never read). RTCP sender reports every 'sender-report-interval'. With 'username' and \
            'password', every request but OPTIONS needs them (Digest or Basic). Metrics: \
            camflow_rtsp_clients, camflow_rtsp_bytes_sent_total, camflow_rtsp_gops_dropped_total, \
            camflow_rtsp_refused_total per stream or node; camflow_rtsp_client_* per playing client (labels \
            client = its IP:PORT and transport), removed when it leaves.
            """,
        options: [
            OptionSpec("bind", .string, default: "0.0.0.0:8554",
                       "Address to listen on: HOST:PORT, [V6]:PORT or :PORT for every interface; port 0 picks one."),
            OptionSpec("username", .string, "User every request but OPTIONS must authenticate as (with 'password')."),
            OptionSpec("password", .secret, "Password for 'username' (Digest or Basic); never printed."),
            OptionSpec("udp-ports", .string,
                       "Server ports for RTP over UDP as FIRST-LAST (such as 20000-20999): two per track per client; unset, clients use TCP."),
            OptionSpec("mtu", .size, default: "1400", min: "256", max: "65000", "Largest RTP packet, its header included."),
            OptionSpec("client-queue", .size, default: "8MiB", min: "16KiB",
                       "Bytes queued per client before it loses whole GOPs."),
            OptionSpec("gop-cache", .size, default: "16MiB", min: "64KiB",
                       "Bytes of RTP packets of the current GOP kept per stream so a client starts at the latest keyframe."),
            OptionSpec("udp-join-rate", .size, default: "4MiB", min: "64KiB",
                       "Bytes per second at most sent to a UDP client (its first GOP is paced at this, not burst)."),
            OptionSpec("session-timeout", .duration, default: "60s", min: "1s",
                       "Close a connection that sent nothing (a request, a keep-alive, RTCP) for this long."),
            OptionSpec("header-timeout", .duration, default: "10s", above: "0s",
                       "Close a connection whose request is not complete this long after it began (or after connecting)."),
            OptionSpec("sender-report-interval", .duration, default: "5s", min: "100ms", "RTCP sender reports per track this often."),
            OptionSpec("max-connections", .integer, default: "256", min: "1", "Connections served at once; more are closed at once and counted."),
            OptionSpec("max-connections-per-client", .integer, default: "32", min: "1", "Connections at once from one client address (an IPv6 /64)."),
            .maxStreams(default: 16),
        ],
        accepts: [.initSegment, .fragment],
        emits: .nothing,
        make: { options in try RTSPNode(options) })

    let host: String
    let port: Int
    let configuration: RTSPServerConfiguration

    init(_ options: NodeOptions) throws {
        let bind = try options.string("bind")
        guard let address = BindAddress(parsing: bind) else {
            throw options.error("expected HOST:PORT, [V6]:PORT or :PORT, found '\(bind)'", option: "bind")
        }
        host = address.host
        port = address.port
        let username = try options.ifSet("username", options.string)
        let password = try options.ifSet("password", options.string)
        if (username == nil) != (password == nil) {
            throw options.error("'username' and 'password' go together", option: username == nil ? "password" : "username")
        }
        var configuration = RTSPServerConfiguration()
        configuration.credentials = username.flatMap { user in password.map { RTSPCredentials(username: user, password: $0) } }
        if let ports = try options.ifSet("udp-ports", options.string) {
            let parts = ports.split(separator: "-").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard parts.count == 2, let first = parts[0], let last = parts[1], first >= 1024, last <= 65535, last >= first + 1 else {
                throw options.error("expected FIRST-LAST with 1024 <= FIRST < LAST <= 65535, found '\(ports)'", option: "udp-ports")
            }
            configuration.udpPorts = first...last
        }
        configuration.mtu = try options.size("mtu")
        configuration.clientQueueBytes = try options.size("client-queue")
        configuration.gopCacheBytes = try options.size("gop-cache")
        configuration.udpJoinRate = try options.size("udp-join-rate")
        configuration.sessionTimeout = try options.duration("session-timeout")
        configuration.headerTimeout = try options.duration("header-timeout")
        configuration.senderReportInterval = try options.duration("sender-report-interval")
        configuration.maxConnections = try options.integer("max-connections")
        configuration.maxConnectionsPerClient = try options.integer("max-connections-per-client")
        configuration.maxStreams = try options.maxStreams()
        self.configuration = configuration
    }

    func run(_ context: NodeContext) async throws {
        var configuration = self.configuration
        configuration.metricsNode = context.id
        let server = RTSPMediaServer(configuration: configuration, clock: context.clock, logger: context.logger)
        let bound: Int
        do { bound = try await server.start(host: host, port: port) } catch {
            throw RTSPNodeError(description: "node '\(context.id)': cannot serve RTSP on \(BindAddress(host: host, port: port)): \(error)")
        }
        let shown = host.contains(":") ? "[\(host)]" : host
        context.logger.notice("serving rtsp://\(shown):\(bound)/STREAM")
        var announced = Set<String>()
        for await packet in context.input {
            do {
                switch packet.kind {
                case .initSegment:
                    try server.publish(stream: packet.stream, initSegment: packet.payload)
                    if announced.insert(packet.stream).inserted {
                        context.logger.notice("serving rtsp://\(shown):\(bound)/\(packet.stream)")
                    }
                case .fragment:
                    try server.publish(stream: packet.stream, fragment: packet.payload, keyframe: packet.media?.keyframe ?? false)
                default:
                    continue
                }
            } catch {
                await context.report(BadPacket(error.description), in: packet)
            }
        }
        await server.shutdown()
    }
}

/// A failure of the `rtsp` node, said in words.
struct RTSPNodeError: Error, CustomStringConvertible {
    let description: String
}
