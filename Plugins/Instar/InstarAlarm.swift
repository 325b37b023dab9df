import Camflow
import InstarProtocol
import MQTTClient
import NIOCore

/// `instar-alarm`: the camera's own motion, PIR, audio and object alarms as
/// `alarm` events, from its MQTT status topics and/or its alarm server.
struct InstarAlarm: Node {
    static let type = NodeType(
        name: "instar-alarm",
        summary: "The camera's alarms (areas, PIR, audio, objects) as 'alarm' events, over MQTT and/or its HTTP alarm server.",
        details: """
            With 'mqtt' and 'camera' (its MAC address, as on the camera's System/Overview page), \
            the node subscribes to instar/<MAC>/status/alarm/triggered and …/triggered/object on \
            that broker (the camera's own or an external one). With 'http-bind' it listens for the \
            camera's alarm-server requests (set the camera's alarm server to \
            http://<camflow-host>:<port>/ with the query active and, on WQHD models, object; with \
            'username' and 'http-password' the request must carry them as Basic auth). Both may be \
            set. Each alarm is an 'alarm' event on 'stream' (the node id when unset) with the fields \
            source (area1..area4, pir, audio, area+pir, manual, object; none when it ends), area, \
            object (person, vehicle, animal or their sum), value (the camera's number), active \
            (true on a trigger, false when the camera reports 0 again), via (mqtt or http) and \
            camera. A message that is no alarm is dropped and counted.
            """,
        options: MQTTNodeOptions.specs(broker: "mqtt", required: false) + [
            OptionSpec("camera", .string, "The camera's MAC address (00:03:89:AA:BB:CC or 000389AABBCC); needed with 'mqtt'."),
            OptionSpec("topic-prefix", .string, default: "instar", "First level of the camera's MQTT topics."),
            OptionSpec("http-bind", .string, "Listen for alarm-server requests: HOST:PORT, :PORT or PORT."),
            OptionSpec("http-username", .string, "User name the alarm-server requests must carry (Basic auth)."),
            OptionSpec("http-password", .secret, "Password of 'http-username'; never printed. Use ${VAR}."),
            OptionSpec("stream", .string, "Stream the alarms belong to; the node id when unset."),
        ],
        accepts: [],
        emits: .kinds(.event),
        make: { options in try InstarAlarm(options) })

    let mqtt: MQTTClient.Configuration?
    let camera: String?
    let httpBind: BindAddress?
    let httpCredentials: BasicCredentials?
    let stream: String

    init(_ options: NodeOptions) throws {
        var mqtt = try MQTTNodeOptions.configuration(options, broker: "mqtt")
        camera = try options.ifSet("camera", options.string)
        if let camera, !CameraAlarm.isMAC(camera) {
            throw options.error("'\(camera)' is not a MAC address such as 00:03:89:AA:BB:CC", option: "camera")
        }
        if mqtt != nil {
            guard let camera else { throw options.error("'mqtt' needs 'camera', the MAC address whose alarms to follow", option: "mqtt") }
            let prefix = try options.string("topic-prefix")
            if let problem = MQTTTopicRules.nameProblem(prefix) {
                throw options.error("'\(UntrustedText.printable(prefix))': \(problem)", option: "topic-prefix")
            }
            let topics = CameraAlarm.mqttTopics(camera: camera, prefix: prefix)
            mqtt?.subscriptions = [topics.trigger, topics.object]
            mqtt?.subscriptionQoS = 1
            mqtt?.maxPayload = 4096  // {"val":"N"} is a dozen bytes
        }
        self.mqtt = mqtt
        httpBind = try options.ifSet("http-bind", options.string).map { text in
            guard let address = BindAddress(parsing: text) else {
                throw options.error("expected HOST:PORT, :PORT or PORT, found '\(text)'", option: "http-bind")
            }
            return address
        }
        let username = try options.ifSet("http-username", options.string)
        let password = try options.ifSet("http-password", options.string)
        guard (username == nil) == (password == nil) else { throw options.error("'http-username' and 'http-password' go together") }
        httpCredentials = username.map { BasicCredentials(username: $0, password: password ?? "") }
        guard mqtt != nil || httpBind != nil else { throw options.error("needs 'mqtt' (with 'camera') or 'http-bind', or both") }
        stream = try options.ifSet("stream", options.string) ?? options.nodeID
    }

    func run(_ context: NodeContext) async throws {
        let (alarms, sink) = AsyncStream.makeStream(of: Received.self, bufferingPolicy: .bufferingNewest(256))
        // The MQTT client first: if it cannot be made, nothing is left listening.
        var client: MQTTClient?
        if let mqtt {
            let mqttClient = try MQTTClient(mqtt, logger: context.logger)
            try mqttClient.start()
            client = mqttClient
        }
        let listener = client.map { mqttClient in
            Task {
                // A retained alarm is the camera's last state, replayed by the broker on every
                // (re)connection: not a new alarm, so not a trigger.
                for await message in mqttClient.messages where !message.retain {
                    sink.yield(Received(alarm: CameraAlarm.fromMQTT(topic: message.topic, payload: message.payload), via: "mqtt",
                                        peer: message.topic))
                }
            }
        }
        var server: AlarmServer?
        defer {
            listener?.cancel()
            client?.stop()
        }
        if let httpBind {
            server = try await AlarmServer.start(host: httpBind.host, port: httpBind.port, credentials: httpCredentials) { alarm, peer in
                sink.yield(Received(alarm: alarm, via: "http", peer: peer))
            }
            context.logger.info("alarm server listening on http://\(server?.address.description ?? "?")/")
        }
        var sequence: UInt64 = 0
        for await received in alarms {
            guard let alarm = received.alarm else {
                context.stats.countDropped()
                context.logger.debug("not an alarm on \(UntrustedText.printable(received.peer))")
                continue
            }
            var fields: [(key: String, value: EventValue)] = [
                ("source", .string(alarm.source)), ("value", .int(Int64(alarm.value))), ("active", .bool(alarm.active)),
                ("via", .string(received.via)),
            ]
            if let area = alarm.area { fields.append(("area", .int(Int64(area)))) }
            if let object = alarm.object { fields.append(("object", .string(object))) }
            if let camera { fields.append(("camera", .string(CameraAlarm.normalizedMAC(camera)))) }
            await context.emit(.event(Event("alarm", fields), stream: stream, sequence: sequence))
            sequence += 1
        }
        await server?.stop()
    }

    private struct Received: Sendable {
        var alarm: CameraAlarm?
        var via: String
        var peer: String
    }
}
