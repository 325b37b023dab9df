import Foundation

/// The text side of the INSTAR camera's WebSocket protocol, as the camera
/// (and camflow's simulator and web restream) understands it.
public enum CameraCommand: Equatable, Sendable {
    /// `livestream` or `livestream/<channel>`.
    case startLivestream(channel: Int?)
    /// `stop` or `stop/livestream`.
    case stop
    /// `keep-alive`.
    case keepAlive

    /// The channels the camera offers: 11 (full), 12 (medium, the default), 13 (small).
    public static let channels = [11, 12, 13]

    /// Parses a client text message; nil for anything the camera does not know.
    public init?(_ text: String) {
        let command = text.trimmingCharacters(in: .whitespacesAndNewlines)
        switch command {
        case "livestream": self = .startLivestream(channel: nil)
        case "stop", "stop/livestream": self = .stop
        case "keep-alive": self = .keepAlive
        default:
            guard command.hasPrefix("livestream/"), let channel = Int(command.dropFirst("livestream/".count)) else {
                return nil
            }
            self = .startLivestream(channel: channel)
        }
    }

    /// The message a client sends.
    public var text: String {
        switch self {
        case .startLivestream(let channel): channel.map { "livestream/\($0)" } ?? "livestream"
        case .stop: "stop"
        case .keepAlive: "keep-alive"
        }
    }
}

/// Where the camera serves its stream.
public enum CameraPath {
    /// The WebSocket endpoint, `/ws`.
    public static let webSocket = "/ws"
}
