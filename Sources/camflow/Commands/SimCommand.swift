import ArgumentParser
import Camflow
import CamflowCLI
import Foundation
import InstarSimulator
import Logging
import MQTTClient
import NIOCore
import ServiceLifecycle

/// `camflow sim`: a camera simulator that speaks the INSTAR WebSocket protocol.
struct SimCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "Serve simulated INSTAR cameras: WebSocket /ws, Basic auth, live fMP4 in real time.",
        discussion: """
            Prints one line per camera, 'camera N: ws://HOST:PORT/ws', once listening, then \
            'timeline-origin-ns: T' (media second s is sent at monotonic time T + s/speed); runs until \
            Ctrl-C or SIGTERM. The media loops forever with continuous timestamps; a client joins \
            each camera's live timeline at the next fragment. Fault injection: --drop-every hangs \
            up, --stall-after stops sending but keeps the socket, --garbage-every sends malformed \
            bytes. Alarms: with --mqtt and/or --alarm-server, every --alarm-every each camera \
            reports an area-1 alarm the way INSTAR cameras do (instar/<MAC>/status/alarm/triggered \
            {"val":"1"}, then {"val":"0"} up to 5 s later; an alarm-server GET with active=1); \
            each camera's made-up MAC is printed as 'camera N mac: …'. With --rtsp-port the \
            cameras are also served over RTSP (RTP over TCP, interleaved), camera N as \
            rtsp://HOST:PORT/cameraN with the same credentials, printed after the WebSocket URL on \
            the camera's line ('camera N: ws://… rtsp://…'); the faults apply to the WebSocket only.
            """)

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port of the first camera (the others follow); 0 for free ports.")
    var port = 0

    @Option(help: "Also serve the cameras over RTSP on this port (0 for a free one), as rtsp://HOST:PORT/cameraN.")
    var rtspPort: Int?

    @Option(help: "Number of cameras.")
    var cameras = 1

    @Option(help: "A fragmented MP4 to serve; default: the built-in 640x360 H.264 + AAC clip.")
    var media: String?

    @Option(help: "User name the cameras require.")
    var username = "admin"

    @Option(help: "Password the cameras require (default: instar, or $CAMFLOW_SIM_PASSWORD).")
    var password: String?

    @Flag(help: "Require no credentials.")
    var noAuth = false

    @Flag(help: "Also accept ?user=&pwd= credentials on the path.")
    var acceptQueryAuth = false

    @Option(help: "How bytes are cut into messages: box, fragment or random.")
    var chunking = "fragment"

    @Flag(help: "Serve wss:// with a fresh self-signed certificate.")
    var tls = false

    @Option(help: "With --tls: write the certificate (PEM) here, for clients' ca-file.")
    var certificateOut: String?

    @Option(help: "Close connections whose client said nothing for this long.")
    var clientIdleTimeout = "60s"

    @Option(help: "Hang up every connection this long after streaming starts.")
    var dropEvery: String?

    @Option(help: "Stop sending (keep the socket) this long after streaming starts.")
    var stallAfter: String?

    @Option(help: "Send a message of malformed bytes this often.")
    var garbageEvery: String?

    @Option(help: "Publish the cameras' alarms to this MQTT broker (mqtt://host:port).")
    var mqtt: String?

    @Option(help: "Send the cameras' alarm-server requests to this URL (http://host:port/path).")
    var alarmServer: String?

    @Option(help: "Time between alarms, with --mqtt or --alarm-server.")
    var alarmEvery = "20s"

    @Option(help: "Media seconds per second (1 is real time).")
    var speed = 1.0

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "notice"

    func validate() throws {
        guard cameras >= 1 else { throw ValidationError("--cameras must be at least 1") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0 to 65535") }
        if let rtspPort, !(0...65535).contains(rtspPort) { throw ValidationError("--rtsp-port must be 0 to 65535") }
        guard CameraSimulatorConfiguration.Chunking(rawValue: chunking) != nil else {
            throw ValidationError("--chunking: expected box, fragment or random, found '\(chunking)'")
        }
        guard speed > 0 else { throw ValidationError("--speed must be positive") }
        try validateDurations([("--client-idle-timeout", clientIdleTimeout), ("--drop-every", dropEvery),
                               ("--stall-after", stallAfter), ("--garbage-every", garbageEvery),
                               ("--alarm-every", alarmEvery)], positive: true)
        if let mqtt {
            do { _ = try BrokerURL(parsing: mqtt) } catch { throw ValidationError("--mqtt: \(error)") }
        }
        if let alarmServer, URL(string: alarmServer)?.scheme != "http" || URL(string: alarmServer)?.host == nil {
            throw ValidationError("--alarm-server: expected an http://host:port/path URL")
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: unknown level '\(logLevel)'") }
    }

    func run() async throws {
        bootstrapLogging(Logger.Level(rawValue: logLevel) ?? .notice)
        let logger = Logger(label: "camflow.sim")
        let mediaBytes: Data
        do {
            if let media {
                mediaBytes = try Data(contentsOf: URL(fileURLWithPath: media))
            } else if let url = SimulatedMedia.builtInClip {
                mediaBytes = try Data(contentsOf: url)
            } else {
                printError("error: the built-in media is missing; pass --media FILE")
                throw ExitCodes.failure
            }
        } catch let error as ExitCode {
            throw error
        } catch {
            printError("error: cannot read media '\(media ?? "camera.mp4")': \(error.localizedDescription)")
            throw ExitCodes.failure
        }
        var configuration: CameraSimulatorConfiguration
        do {
            configuration = CameraSimulatorConfiguration(media: try SimulatedMedia(file: ByteBuffer(bytes: mediaBytes)))
        } catch {
            printError("error: cannot serve '\(media ?? "camera.mp4")': \(error)")
            throw ExitCodes.failure
        }
        configuration.host = host
        configuration.port = port
        configuration.cameras = cameras
        configuration.username = noAuth ? nil : username
        configuration.password = noAuth ? nil : (password ?? ProcessInfo.processInfo.environment["CAMFLOW_SIM_PASSWORD"] ?? "instar")
        configuration.acceptsQueryAuthentication = acceptQueryAuth
        configuration.chunking = CameraSimulatorConfiguration.Chunking(rawValue: chunking) ?? .fragment
        configuration.clientIdleTimeout = Units.duration(clientIdleTimeout) ?? .seconds(60)
        configuration.dropEvery = dropEvery.flatMap(Units.duration)
        configuration.stallAfter = stallAfter.flatMap(Units.duration)
        configuration.garbageEvery = garbageEvery.flatMap(Units.duration)
        configuration.speed = speed
        configuration.rtspPort = rtspPort
        if tls {
            let certificate = try SelfSignedCertificate()
            configuration.tls = certificate
            let path = certificateOut
                ?? FileManager.default.temporaryDirectory.appendingPathComponent("camflow-sim-\(getpid()).pem").path
            try certificate.certificatePEM.write(toFile: path, atomically: true, encoding: .utf8)
            printOutput("certificate: \(path)")
        }
        let simulator = CameraSimulator(configuration: configuration, logger: logger)
        var services: [any Service] = [SimulatorService(simulator: simulator)]
        if mqtt != nil || alarmServer != nil {
            let alarms = SimulatedAlarms(every: Units.duration(alarmEvery) ?? .seconds(20), mqtt: try mqtt.map { try BrokerURL(parsing: $0) },
                                         alarmServer: alarmServer.flatMap(URL.init(string:)), cameras: cameras)
            for number in 1...cameras { printOutput("camera \(number) mac: \(SimulatedAlarms.mac(camera: number))") }
            services.append(AlarmService(alarms: alarms, logger: logger))
        }
        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// The simulator as a service: serves until a graceful shutdown.
private struct SimulatorService: Service {
    let simulator: CameraSimulator

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                try await simulator.serve { endpoints in
                    for (index, endpoint) in endpoints.enumerated() {
                        printOutput("camera \(index + 1): \(endpoint.webSocket)" + (endpoint.rtsp.map { " \($0)" } ?? ""))
                    }
                    printOutput("timeline-origin-ns: \(simulator.timelineOrigin)")
                }
            }
        } catch is CancellationError {
            return
        }
    }
}

/// The simulated alarms as a service: sends until a graceful shutdown.
private struct AlarmService: Service {
    let alarms: SimulatedAlarms
    let logger: Logger

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { try await alarms.run(logger: logger) }
        } catch is CancellationError {
            return
        }
    }
}
