import CamflowTesting
import Foundation
import Logging
import MQTTClient
import NIOCore
import Testing

@Suite struct BrokerURLTests {
    @Test func urlsGiveHostPortTLSAndCredentials() throws {
        let plain = try BrokerURL(parsing: "mqtt://broker.local")
        #expect(plain.host == "broker.local" && plain.port == 1883 && !plain.tls && plain.username == nil)
        let secure = try BrokerURL(parsing: "mqtts://cam%40home:s3cr%3At@10.0.0.2:9883")
        #expect(secure.tls && secure.port == 9883 && secure.username == "cam@home" && secure.password == "s3cr:t")
        #expect(secure.description == "mqtts://cam@home:***@10.0.0.2:9883")
        #expect(try BrokerURL(parsing: "mqtts://h").port == 8883)
    }

    @Test func badURLsAreRefusedWithoutShowingThePassword() {
        for (text, expected) in [("http://h:1883", "scheme 'http'"), ("mqtt://:1883", "no host"),
                                 ("mqtt://u:hunter2@h:1883/x", "has a path"), ("mqtt://h:99999", "between 1 and 65535")] {
            do {
                _ = try BrokerURL(parsing: text)
                Issue.record("'\(text)' was accepted")
            } catch {
                #expect(error.description.contains(expected), "\(error)")
                #expect(!error.description.contains("hunter2"))
            }
        }
    }
}

@Suite(.serialized) struct MQTTClientTests {
    private func client(_ broker: MosquittoBroker, id: String, subscribe: [String] = []) throws -> MQTTClient {
        var configuration = MQTTClient.Configuration(broker: try BrokerURL(parsing: broker.url), clientID: id)
        configuration.subscriptions = subscribe
        configuration.reconnectDelay = (.seconds(1), .seconds(1))
        return try MQTTClient(configuration, logger: Logger(label: "test"))
    }

    private func next(_ iterator: inout AsyncStream<MQTTClient.Message>.Iterator) async -> MQTTClient.Message? {
        await iterator.next()
    }

    @Test func messagesGoThroughARealBroker_andFlowAgainAfterItRestarts() async throws {
        try #require(MosquittoBroker.isInstalled, "needs Debian's mosquitto")
        let broker = try await MosquittoBroker()
        let receiver = try client(broker, id: "receiver", subscribe: ["cams/+/alarm"])
        let sender = try client(broker, id: "sender")
        var events = receiver.connectionEvents.makeAsyncIterator()
        try receiver.start()
        try sender.start()
        #expect(await events.next() == .connected)
        var messages = receiver.messages.makeAsyncIterator()
        // QoS 1: the sender may not be connected yet; the message waits for it.
        #expect(sender.publish(.init(topic: "cams/front/alarm", text: #"{"val":"1"}"#, qos: 1)))
        let first = await next(&messages)
        #expect(first?.topic == "cams/front/alarm" && first.map { String(buffer: $0.payload) } == #"{"val":"1"}"#)

        try await broker.stop()
        guard case .disconnected = await events.next() else { Issue.record("no disconnection seen"); return }
        try await broker.start()
        #expect(await events.next() == .connected)
        // The subscription was made again on the new connection.
        var senderEvents = sender.connectionEvents.makeAsyncIterator()
        while await senderEvents.next() != .connected {}
        #expect(sender.publish(.init(topic: "cams/back/alarm", text: "again", qos: 1)))
        let second = await next(&messages)
        #expect(second?.topic == "cams/back/alarm")
        sender.stop()
        receiver.stop()
    }

    @Test func whileDisconnected_qos0IsDroppedAndTheQueueIsBounded() async throws {
        try #require(MosquittoBroker.isInstalled, "needs Debian's mosquitto")
        let broker = try await MosquittoBroker()
        try await broker.stop()
        var configuration = MQTTClient.Configuration(broker: try BrokerURL(parsing: broker.url), clientID: "lonely")
        configuration.maxQueuedWhileDisconnected = 3
        let client = try MQTTClient(configuration, logger: Logger(label: "test"))
        try client.start()
        #expect(!client.publish(.init(topic: "t", text: "qos0")))
        let accepted = (0..<5).filter { _ in client.publish(.init(topic: "t", text: "qos1", qos: 1)) }.count
        #expect(accepted == 3)
        #expect(client.droppedSent == 3)
        client.stop()
    }
}

@Suite struct MQTTTLSTests {
    /// A CA, and a server (127.0.0.1) and a client certificate it signed, made with openssl.
    private func certificates() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-mqtt-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let script = """
            set -e
            key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2>/dev/null; }
            key ca.key; key server.key; key client.key
            openssl req -x509 -new -key ca.key -out ca.pem -days 1 -subj /CN=camflow-test-ca
            openssl req -new -key server.key -out server.csr -subj /CN=127.0.0.1
            printf 'subjectAltName=IP:127.0.0.1\\n' > server.ext
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 1 -extfile server.ext 2>/dev/null
            openssl req -new -key client.key -out client.csr -subj /CN=camflow-client
            openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 1 2>/dev/null
            chmod 644 *.key
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        process.currentDirectoryURL = directory
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "openssl could not make the test certificates")
        return directory
    }

    @Test func mqtts_withACAFileAndAClientCertificate_goesThroughABrokerThatRequiresThem() async throws {
        try #require(MosquittoBroker.isInstalled, "needs Debian's mosquitto")
        let files = try certificates()
        func path(_ name: String) -> String { files.appendingPathComponent(name).path }
        let broker = try await MosquittoBroker(tls: .init(caFile: path("ca.pem"), certificateFile: path("server.pem"),
                                                          keyFile: path("server.key"), requireClientCertificate: true))
        #expect(broker.url.hasPrefix("mqtts://"))
        var configuration = MQTTClient.Configuration(broker: try BrokerURL(parsing: broker.url), clientID: "tls-client")
        configuration.caFile = path("ca.pem")
        configuration.certificateFile = path("client.pem")
        configuration.keyFile = path("client.key")
        configuration.subscriptions = ["secure/#"]
        let client = try MQTTClient(configuration, logger: Logger(label: "tls"))
        var events = client.connectionEvents.makeAsyncIterator()
        try client.start()
        #expect(await events.next() == .connected)
        #expect(client.publish(.init(topic: "secure/ping", text: "over TLS", qos: 1)))
        var messages = client.messages.makeAsyncIterator()
        let echoed = await messages.next()
        #expect(echoed.map { String(buffer: $0.payload) } == "over TLS")
        client.stop()
    }
}

@Suite struct BrokerURLRedactionTests {
    @Test func malformedURLsDoNotShowTheirPassword() {
        for text in ["mqtt:user:hunter2@broker", "mqtt//u:hunter2@h", "mqtts://u:hunter2@"] {
            do {
                _ = try BrokerURL(parsing: text)
            } catch {
                #expect(!error.description.contains("hunter2"), "\(error)")
            }
        }
    }
}
