import CamflowTesting
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
