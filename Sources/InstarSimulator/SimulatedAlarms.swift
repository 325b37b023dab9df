public import Camflow
public import Foundation
import InstarProtocol
public import Logging
public import MQTTClient
import NIOCore
import NIOPosix

/// Alarms as simulated cameras send them: every `every`, each camera
/// reports area 1 (`{"val":"1"}` on its MQTT status topic, and/or an
/// alarm-server GET with `active=1`), and the end of the alarm (`val` 0)
/// a few seconds later.
public struct SimulatedAlarms: Sendable {
    public var every: Duration
    /// The broker of the MQTT status topics, if any.
    public var mqtt: BrokerURL?
    /// The alarm server's URL (http://[user:password@]host:port/path), if any.
    public var alarmServer: URL?
    public var cameras: Int
    /// What the alarms are timed by.
    public var clock: any PipelineClock

    public init(every: Duration, mqtt: BrokerURL?, alarmServer: URL?, cameras: Int, clock: any PipelineClock = SystemClock()) {
        self.every = every
        self.mqtt = mqtt
        self.alarmServer = alarmServer
        self.cameras = cameras
        self.clock = clock
    }

    /// The made-up MAC address of camera `number` (locally administered, so never a real one's).
    public static func mac(camera number: Int) -> String {
        String(format: "02CAF1%06X", number)
    }

    /// Sends alarms until cancelled.
    public func run(logger: Logger) async throws {
        var client: MQTTClient?
        if let mqtt {
            let made = try MQTTClient(.init(broker: mqtt, clientID: "camflow-sim-\(getpid())"), logger: logger)
            try made.start()
            client = made
        }
        defer { client?.stop() }
        let hold = min(Duration.seconds(5), every / 2)
        while !Task.isCancelled {
            try await clock.sleep(for: every - hold)
            for number in 1...cameras { try await send(1, camera: number, client: client, logger: logger) }
            try await clock.sleep(for: hold)
            for number in 1...cameras { try await send(0, camera: number, client: client, logger: logger) }
        }
    }

    private func send(_ value: Int, camera number: Int, client: MQTTClient?, logger: Logger) async throws {
        let mac = Self.mac(camera: number)
        if let client {
            let topic = CameraAlarm.mqttTopics(camera: mac).trigger
            client.publish(.init(topic: topic, text: #"{"val":"\#(value)"}"#, qos: 1))
        }
        if let alarmServer, value != 0 {
            do {
                let status = try await Self.get(alarmServer, query: "active=\(value)&camera=\(number)")
                if status != 200 { logger.warning("alarm server answered \(status)") }
            } catch {
                logger.warning("alarm server: \(error)")
            }
        }
        logger.notice("camera \(number) (\(mac)): alarm \(value == 0 ? "ended" : "area 1")")
    }

    /// One plain-HTTP GET; the response's status code.
    static func get(_ url: URL, query: String) async throws -> Int {
        guard url.scheme == "http", let host = url.host else { throw SimulatorError("the alarm server must be an http:// URL") }
        let path = (url.path.isEmpty ? "/" : url.path) + "?" + ([url.query, query].compactMap { $0 }.joined(separator: "&"))
        var request = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n"
        if let user = url.user {
            request += "Authorization: \(BasicCredentials(username: user, password: url.password ?? "").authorization)\r\n"
        }
        request += "\r\n"
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(5))
            .connect(host: host, port: url.port ?? 80) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: request))
            var response = ByteBuffer()
            for try await chunk in inbound {
                var chunk = chunk
                response.writeBuffer(&chunk)
                if response.readableBytes > 64 * 1024 { break }
            }
            let line = response.getString(at: 0, length: min(response.readableBytes, 64)) ?? ""
            return line.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        }
    }
}

/// A simulator setting that cannot work.
public struct SimulatorError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
