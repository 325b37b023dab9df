import Camflow
import CamflowTesting
import Foundation
import Logging
import MQTTClient
import Testing

/// A stop reaches the client's network thread at once, whatever it is doing.
@Suite struct MQTTStopTests {
    /// The thread waits out a 30 s backoff after a refused connection;
    /// `finish` ends the wait and returns once the thread has let the
    /// client go (it used to look every 100 ms, holding the client meanwhile).
    @Test func finishDuringALongBackoff_returnsAtOnce_andTheThreadHasLetGo() async throws {
        // Nothing listens there: each attempt is refused at once.
        let port = try #require(Loopback.freePort())
        let log = RecordedLog()
        weak var released: MQTTClient?
        let elapsed: Duration
        do {
            var configuration = MQTTClient.Configuration(broker: BrokerURL(host: "127.0.0.1", port: port), clientID: "backoff")
            configuration.reconnectDelay = (.seconds(30), .seconds(30))
            let client = try MQTTClient(configuration, logger: log.logger)
            released = client
            try client.start()
            try await waitUntil("the first refusal", timeout: .seconds(10)) { log.text.contains("retrying") }
            let started = ContinuousClock.now
            await client.finish(linger: .seconds(10))
            elapsed = ContinuousClock.now - started
        }
        #expect(elapsed < .milliseconds(100))
        #expect(released == nil, "the network thread still held the client after finish returned")
    }

    /// What waits to be sent holds `finish` for its linger on the client's
    /// clock, no longer: here no broker ever takes it.
    @Test func finishWithQueuedMessages_waitsItsLingerOnTheClock() async throws {
        let port = try #require(Loopback.freePort())
        let clock = ManualClock()
        var configuration = MQTTClient.Configuration(broker: BrokerURL(host: "127.0.0.1", port: port), clientID: "linger")
        configuration.reconnectDelay = (.seconds(30), .seconds(30))
        let client = try MQTTClient(configuration, logger: Logger(label: "linger"), clock: clock)
        try client.start()
        #expect(client.publish(.init(topic: "t", text: "queued", qos: 1)))
        let finished = OneShotSignal()
        Task {
            await client.finish(linger: .seconds(5))
            finished.fire()
        }
        // The backoff and the linger.
        try await clock.waitForSleepers(2, timeout: .seconds(10))
        #expect(!finished.isFired)
        await clock.advance(by: .seconds(5))
        try await waitUntil("finish returns at the end of its linger", timeout: .seconds(10)) { finished.isFired }
    }
}
