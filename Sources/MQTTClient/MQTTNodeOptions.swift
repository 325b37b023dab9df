public import Camflow
import Foundation

/// The options of every node that talks to an MQTT broker, declared and read
/// in one place: `mqtt-subscribe`, `mqtt-publish` and `instar-alarm`.
public enum MQTTNodeOptions {
    /// The option specs; the broker URL option is `broker` unless named otherwise.
    public static func specs(broker: String = "broker", required: Bool = true) -> [OptionSpec] {
        [
            OptionSpec(broker, .string, required: required,
                       "Broker URL: mqtt://host:1883, or mqtts://host:8883 for TLS; user:password@ may precede the host."),
            OptionSpec("username", .string, "Broker user name (instead of the URL's)."),
            OptionSpec("password", .secret, "Broker password (instead of the URL's); never printed. Use ${VAR}."),
            OptionSpec("client-id", .string, "MQTT client id, unique per broker; camflow-NODE-PID when unset."),
            OptionSpec("keep-alive", .duration, default: "30s", min: "5s", max: "18h", "Ping interval; the broker drops a silent client after 1.5 times this."),
            OptionSpec("reconnect-max", .duration, default: "30s", min: "1s", max: "1h",
                       "Longest wait between reconnection attempts (starting at 1s, doubling)."),
            OptionSpec("ca-file", .string, "PEM file of the CA that signed the broker's certificate (mqtts://); the system's CAs when unset."),
            OptionSpec("cert-file", .string, "PEM client certificate, for brokers that require one (mqtts://)."),
            OptionSpec("key-file", .string, "PEM private key of 'cert-file'."),
            OptionSpec("protocol", .choice(MQTTClient.ProtocolVersion.allCases.map(\.rawValue)), default: "5",
                       "MQTT version: 5 announces the payload limit, so the broker drops larger messages before sending; 3.1.1 for brokers without MQTT 5 (a larger message then arrives whole and is dropped here)."),
        ]
    }

    /// The client configuration the options describe; nil when the broker
    /// option is not set (allowed only when it is not required).
    public static func configuration(_ options: NodeOptions, broker name: String = "broker") throws -> MQTTClient.Configuration? {
        guard let text = try options.ifSet(name, options.string) else { return nil }
        var broker: BrokerURL
        do {
            broker = try BrokerURL(parsing: text)
        } catch {
            throw options.error(error.description, option: name)
        }
        if let username = try options.ifSet("username", options.string) { broker.username = username }
        if let password = try options.ifSet("password", options.string) { broker.password = password }
        let clientID = try options.ifSet("client-id", options.string) ?? "camflow-\(options.nodeID)-\(getpid())"
        // MQTT 3.1.1 allows 23 bytes for sure; brokers take more, but not 64 KiB.
        guard !clientID.isEmpty, clientID.utf8.count <= 256 else {
            throw options.error("a client id is 1 to 256 bytes", option: "client-id")
        }
        var configuration = MQTTClient.Configuration(broker: broker, clientID: clientID)
        configuration.keepAlive = try options.duration("keep-alive")
        configuration.reconnectDelay = (.seconds(1), try options.duration("reconnect-max"))
        configuration.caFile = try options.ifSet("ca-file", options.string)
        configuration.certificateFile = try options.ifSet("cert-file", options.string)
        configuration.keyFile = try options.ifSet("key-file", options.string)
        configuration.protocolVersion = MQTTClient.ProtocolVersion(rawValue: try options.string("protocol")) ?? .v5
        if (configuration.certificateFile == nil) != (configuration.keyFile == nil) {
            throw options.error("'cert-file' and 'key-file' go together")
        }
        if !broker.tls, configuration.caFile != nil || configuration.certificateFile != nil {
            throw options.error("TLS files need an mqtts:// broker", option: "ca-file")
        }
        for file in [configuration.caFile, configuration.certificateFile, configuration.keyFile].compactMap({ $0 })
        where !FileManager.default.isReadableFile(atPath: file) {
            throw options.error("cannot read '\(file)'")
        }
        return configuration
    }
}
