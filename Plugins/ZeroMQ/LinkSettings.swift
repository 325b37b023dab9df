import Camflow
import CZeroMQ

/// How a ZeroMQ socket notices a dead link and comes back: heartbeats (so a
/// peer behind a cut cable, which TCP may take minutes to give up on, is
/// dropped in seconds), and short reconnect and connect timeouts (so the
/// first attempt after the link returns is at most a moment away, not
/// after a TCP SYN backoff of many seconds).
struct LinkSettings: Sendable, Equatable {
    /// 0 turns heartbeats off.
    var heartbeat: Duration = .seconds(1)
    var heartbeatTimeout: Duration = .seconds(3)
    var reconnect: Duration = .milliseconds(100)
    var reconnectMax: Duration = .milliseconds(500)
    var connectTimeout: Duration = .milliseconds(500)

    static let optionSpecs: [OptionSpec] = [
        OptionSpec("heartbeat", .duration, default: "1s",
                   "Ping each peer this often (ZMQ_HEARTBEAT_IVL) so a dead link is noticed; 0s for never."),
        OptionSpec("heartbeat-timeout", .duration, default: "3s", above: "0s",
                   "Drop a peer that answered no ping for this long, and reconnect (ZMQ_HEARTBEAT_TIMEOUT); raise it on slow WAN links, where a ping waits behind queued data."),
        OptionSpec("reconnect", .duration, default: "100ms", above: "0s",
                   "When connecting: first wait before connecting again to a lost peer (ZMQ_RECONNECT_IVL)."),
        OptionSpec("reconnect-max", .duration, default: "500ms", above: "0s",
                   "When connecting: longest wait between attempts as they back off (ZMQ_RECONNECT_IVL_MAX)."),
        OptionSpec("connect-timeout", .duration, default: "500ms", above: "0s",
                   "When connecting: give up a TCP connection attempt after this and start the next (ZMQ_CONNECT_TIMEOUT)."),
    ]

    static func from(_ options: NodeOptions) throws -> LinkSettings {
        let settings = LinkSettings(heartbeat: try options.duration("heartbeat"), heartbeatTimeout: try options.duration("heartbeat-timeout"),
                                    reconnect: try options.duration("reconnect"), reconnectMax: try options.duration("reconnect-max"),
                                    connectTimeout: try options.duration("connect-timeout"))
        if settings.heartbeat > .zero, settings.heartbeatTimeout < settings.heartbeat {
            throw options.error("a 'heartbeat-timeout' shorter than the 'heartbeat' drops every peer", option: "heartbeat-timeout")
        }
        return settings
    }

    func apply(to socket: ZMQSocket) throws(ZMQError) {
        func milliseconds(_ duration: Duration) -> Int32 { Int32(clamping: duration.nanoseconds / 1_000_000) }
        if heartbeat > .zero {
            try socket.set(ZMQ_HEARTBEAT_IVL, milliseconds(heartbeat))
            try socket.set(ZMQ_HEARTBEAT_TIMEOUT, milliseconds(heartbeatTimeout))
            // The peer drops us too when our pings stop (a TTL in tenths of a second, within its 16 bits).
            try socket.set(ZMQ_HEARTBEAT_TTL, min(milliseconds(heartbeatTimeout), 6_553_500))
        }
        try socket.set(ZMQ_RECONNECT_IVL, milliseconds(reconnect))
        try socket.set(ZMQ_RECONNECT_IVL_MAX, milliseconds(max(reconnect, reconnectMax)))
        try socket.set(ZMQ_CONNECT_TIMEOUT, milliseconds(connectTimeout))
    }
}
