import Camflow
import Logging
import RTSPServer

/// Where a simulated camera is served: its WebSocket and, when the simulator
/// has an RTSP port, its RTSP stream.
public struct SimulatedCameraEndpoint: Sendable, Equatable {
    public let webSocket: String
    public let rtsp: String?

    public init(webSocket: String, rtsp: String?) {
        self.webSocket = webSocket
        self.rtsp = rtsp
    }
}

/// The simulator's cameras over RTSP: one RTSP server for all of them, each
/// camera a stream `cameraN` fed with the init segment and the fragments its
/// WebSocket clients get, at the same moments of the same live timeline.
/// The WebSocket faults (drops, stalls, garbage) are not applied here: an
/// RTSP client always sees a clean stream.
struct SimulatedRTSP: Sendable {
    let server: RTSPMediaServer
    let host: String
    let port: Int
    let configuration: CameraSimulatorConfiguration

    /// The stream name of camera `number` (1-based).
    static func streamName(camera number: Int) -> String { "camera\(number)" }

    /// Starts the RTSP server when `configuration.rtspPort` asks for one and
    /// gives it every camera's init segment, so a client can DESCRIBE as soon
    /// as the URL is printed; nil without an RTSP port.
    static func start(_ configuration: CameraSimulatorConfiguration, logger: Logger) async throws -> SimulatedRTSP? {
        guard let rtspPort = configuration.rtspPort else { return nil }
        var serverConfiguration = RTSPServerConfiguration()
        if let username = configuration.username {
            serverConfiguration.credentials = RTSPCredentials(username: username, password: configuration.password ?? "")
        }
        serverConfiguration.realm = "INSTAR"
        serverConfiguration.metricsNode = "sim"
        let server = RTSPMediaServer(configuration: serverConfiguration, clock: configuration.clock, logger: logger)
        let port: Int
        do {
            port = try await server.start(host: configuration.host, port: rtspPort)
        } catch {
            throw SimulatedRTSPError(description: "cannot serve RTSP on \(configuration.host):\(rtspPort): \(error)")
        }
        do {
            for number in 1...max(1, configuration.cameras) {
                try server.publish(stream: streamName(camera: number), initSegment: configuration.media.initSegment)
            }
        } catch {
            await server.shutdown()
            throw SimulatedRTSPError(description: "cannot serve the media over RTSP: \(error)")
        }
        return SimulatedRTSP(server: server, host: configuration.host, port: port, configuration: configuration)
    }

    func url(camera number: Int) -> String {
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return "rtsp://\(host):\(port)/\(Self.streamName(camera: number))"
    }

    /// Feeds `camera`'s stream until cancelled: each fragment once the
    /// camera's live timeline has passed its end, as the WebSocket sends it.
    func feed(_ camera: Camera) async throws {
        let media = configuration.media
        let clock = configuration.clock
        let stream = Self.streamName(camera: camera.number)
        var (loop, index) = media.position(startingAtOrAfter: camera.mediaSeconds(speed: configuration.speed))
        while true {
            try await clock.sleep(until: camera.instant(ofMediaSeconds: media.end(index, loop: loop), speed: configuration.speed))
            try server.publish(stream: stream, fragment: media.fragment(index, loop: loop), keyframe: media.startsWithKeyframe[index])
            index += 1
            if index == media.fragments.count {
                index = 0
                loop += 1
            }
        }
    }
}

/// Why the simulator cannot serve its cameras over RTSP.
public struct SimulatedRTSPError: Error, CustomStringConvertible {
    public let description: String
}
