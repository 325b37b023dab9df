import CamflowTesting
import Logging
import MQTTClient
import NIOCore
import Synchronization

/// A client whose messages and connection events are recorded by tasks of
/// its own, so tests wait on conditions with a bound (`waitUntil`), never on
/// a stream that might not deliver.
final class Listener: Sendable {
    let client: MQTTClient
    private final class Record: Sendable {
        let messages = Mutex<[(topic: String, text: String, retained: Bool)]>([])
        let events = Mutex<[MQTTClient.ConnectionEvent]>([])
    }
    private let record = Record()
    private let readers: [Task<Void, Never>]

    /// Connects (waiting at most 20 s) with `configure` applied to the configuration.
    init(_ broker: MosquittoBroker, id: String, subscribe: [String] = [], connect: Bool = true,
         configure: (inout MQTTClient.Configuration) -> Void = { _ in }) async throws {
        var configuration = MQTTClient.Configuration(broker: try BrokerURL(parsing: broker.url), clientID: id)
        configuration.subscriptions = subscribe
        configuration.reconnectDelay = (.seconds(1), .seconds(1))
        configure(&configuration)
        let client = try MQTTClient(configuration, logger: Logger(label: id))
        self.client = client
        let record = self.record
        readers = [
            Task { for await message in client.messages { record.messages.withLock { $0.append((message.topic, String(buffer: message.payload), message.retain)) } } },
            Task { for await event in client.connectionEvents { record.events.withLock { $0.append(event) } } },
        ]
        try client.start()
        if connect { try await waitForConnections(1) }
    }

    var messages: [(topic: String, text: String, retained: Bool)] { record.messages.withLock { $0 } }
    var events: [MQTTClient.ConnectionEvent] { record.events.withLock { $0 } }
    func last(_ topic: String) -> String? { messages.last { $0.topic == topic }?.text }

    /// Waits until the client has connected `count` times.
    func waitForConnections(_ count: Int, timeout: Duration = .seconds(20)) async throws {
        try await waitUntil("\(count) connection(s) of \(client.configuration.clientID)", timeout: timeout) {
            self.events.filter { $0 == .connected }.count >= count
        }
    }

    func stop() {
        client.stop()
        for reader in readers { reader.cancel() }
    }
}
