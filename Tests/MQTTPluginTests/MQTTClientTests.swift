import Camflow
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
    @Test func messagesGoThroughARealBroker_andFlowAgainAfterItRestarts() async throws {
        try #require(MosquittoBroker.isInstalled, "needs Debian's mosquitto")
        let broker = try await MosquittoBroker()
        let receiver = try await Listener(broker, id: "receiver", subscribe: ["cams/+/alarm"])
        let sender = try await Listener(broker, id: "sender")
        #expect(sender.client.publish(.init(topic: "cams/front/alarm", text: #"{"val":"1"}"#, qos: 1)))
        try await waitUntil("the first message", timeout: .seconds(20)) { receiver.last("cams/front/alarm") == #"{"val":"1"}"# }

        try await broker.stop()
        try await waitUntil("both see the broker gone", timeout: .seconds(20)) {
            receiver.events.contains { if case .disconnected = $0 { true } else { false } }
                && sender.events.contains { if case .disconnected = $0 { true } else { false } }
        }
        try await broker.start()
        try await receiver.waitForConnections(2)
        try await sender.waitForConnections(2)
        // The subscription was made again on the new connection.
        #expect(sender.client.publish(.init(topic: "cams/back/alarm", text: "again", qos: 1)))
        try await waitUntil("the message after the restart", timeout: .seconds(20)) { receiver.last("cams/back/alarm") == "again" }
        sender.stop()
        receiver.stop()
    }

    @Test func whileDisconnected_qos0IsDroppedAndTheQueueIsBounded() async throws {
        try #require(MosquittoBroker.isInstalled, "needs Debian's mosquitto")
        let broker = try await MosquittoBroker()
        try await broker.stop()
        let lonely = try await Listener(broker, id: "lonely", connect: false) { $0.maxQueuedWhileDisconnected = 3 }
        #expect(!lonely.client.publish(.init(topic: "t", text: "qos0")))
        let accepted = (0..<5).filter { _ in lonely.client.publish(.init(topic: "t", text: "qos1", qos: 1)) }.count
        #expect(accepted == 3)
        #expect(lonely.client.droppedSent == 3)
        lonely.stop()
    }
}

@Suite struct MQTTTLSTests {
    /// A CA, and a server (127.0.0.1) and a client certificate it signed, made with openssl.
    private func certificates() async throws -> URL {
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
        // openssl is waited for on a thread of its own, not on one of the shared pool's.
        try await BlockingIOThread.run(name: "test-openssl") {
            try process.run()
            process.waitUntilExit()
        }
        try #require(process.terminationStatus == 0, "openssl could not make the test certificates")
        return directory
    }

    @Test func mqtts_withACAFileAndAClientCertificate_goesThroughABrokerThatRequiresThem() async throws {
        try #require(MosquittoBroker.isInstalled, "needs Debian's mosquitto")
        let files = try await certificates()
        func path(_ name: String) -> String { files.appendingPathComponent(name).path }
        let broker = try await MosquittoBroker(tls: .init(caFile: path("ca.pem"), certificateFile: path("server.pem"),
                                                          keyFile: path("server.key"), requireClientCertificate: true))
        #expect(broker.url.hasPrefix("mqtts://"))
        let client = try await Listener(broker, id: "tls-client", subscribe: ["secure/#"]) { configuration in
            configuration.caFile = path("ca.pem")
            configuration.certificateFile = path("client.pem")
            configuration.keyFile = path("client.key")
        }
        #expect(client.client.publish(.init(topic: "secure/ping", text: "over TLS", qos: 1)))
        try await waitUntil("the message over TLS", timeout: .seconds(20)) { client.last("secure/ping") == "over TLS" }
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
