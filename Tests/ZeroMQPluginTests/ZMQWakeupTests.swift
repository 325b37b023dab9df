import CamflowTesting
import Camflow
import CZeroMQ
import Foundation
import Logging
import NIOCore
import Synchronization
import Testing
@testable import ZeroMQPlugin

/// The ZeroMQ threads sleep in zmq_poll on their sockets and a wake-up
/// socket: a stop reaches them at once, and every deadline is the
/// pipeline clock's, not a look every so often.
@Suite struct ZMQWakeupTests {
    /// zmq-subscribe's thread, waiting for the next message, ends as soon as
    /// its node is stopped (it used to look every 100 ms).
    @Test func aSubscriber_stopsWithinMilliseconds_ofItsPipelineStop() async throws {
        var latencies: [Duration] = []
        for _ in 0..<3 { latencies.append(try await stopLatency()) }
        let best = try #require(latencies.min())
        #expect(best < .milliseconds(50), "stop latencies \(latencies)")
    }

    /// From the stop (asked as the first packet arrives, the thread then
    /// back in zmq_poll) to the end of the pipeline's run.
    private func stopLatency() async throws -> Duration {
        let publisher = try ZMQSocket(.xpub)
        try publisher.bind("tcp://127.0.0.1:*")
        let endpoint = publisher.lastEndpoint
        nonisolated(unsafe) let xpub = publisher
        let packet = Packet(kind: .frame, stream: "cam1", sequence: 1, payload: ByteBuffer(string: "x"))
        // Once the subscription is here the subscriber is connected: one message, then nothing.
        let sending = Task {
            try await BlockingIOThread.run(name: "test-xpub") {
                guard try xpub.receive(timeout: .seconds(20)) != nil else { return }
                try xpub.send([ByteBuffer(string: "cam1/frame"), ByteBuffer(string: PacketHeader.json(packet)), packet.payload])
            }
        }
        let stopAskedAt = Mutex<ContinuousClock.Instant?>(nil)
        _ = try await TestHarness(plugins: [ZeroMQPlugin.self]).run([
            NodeSpec(id: "sub", type: "zmq-subscribe", options: ["endpoint": .scalar(endpoint)]),
        ], collect: ["sub"], stopWhen: { collected in
            guard !(collected["sub"] ?? []).isEmpty else { return false }
            stopAskedAt.withLock { $0 = $0 ?? .now }
            return true
        })
        let ended = ContinuousClock.now
        try await sending.value
        publisher.close()
        return ended - (try #require(stopAskedAt.withLock { $0 }))
    }

    /// wait-for-subscribers gives up after wait-timeout on the pipeline's
    /// clock, and publishes anyway.
    @Test func waitForSubscribers_givesUpOnThePipelineClock() async throws {
        let clock = ManualClock()
        let source = NodeType(name: "one-frame", summary: "", accepts: [], emits: .kinds(.frame)) { _ in
            ClosureNode { context in
                await context.emit(Packet(kind: .frame, stream: "cam1", sequence: 0, payload: ByteBuffer(string: "x")))
            }
        }
        var registry = NodeRegistry(plugins: [ZeroMQPlugin.self])
        registry.register(source, from: "test")
        let graph = try GraphValidator(registry: registry).validate(PipelineSpec(name: "t", nodes: [
            NodeSpec(id: "src", type: "one-frame"),
            NodeSpec(id: "pub", type: "zmq-publish", inputs: ["src"], options: [
                "endpoint": "tcp://127.0.0.1:*", "latch": "false", "linger": "0s",
                "wait-for-subscribers": "1", "wait-timeout": "30s",
            ]),
        ]))
        let pipeline = Pipeline(graph: graph, logger: Logger(label: "test"), metricsInterval: nil, clock: clock)
        let running = Task { try await pipeline.run() }
        try await clock.waitForSleepers(1, timeout: .seconds(10))
        await clock.advance(by: .seconds(30))
        try await waitUntil("the pipeline ends once the wait timed out", timeout: .seconds(10)) {
            pipeline.snapshot().node("pub")?.running == false
        }
        try await running.value
    }

    /// The broker reports on its clock's interval, and a cancel ends it at
    /// once with the final statistics.
    @Test func theBroker_reportsOnItsClock_andEndsWhenCancelled() async throws {
        let clock = ManualClock()
        let reports = Mutex<[Bool]>([])
        let broker = ZMQBroker(frontends: ["tcp://127.0.0.1:*"], backends: ["tcp://127.0.0.1:*"])
        let running = Task {
            try await broker.run(interval: .seconds(10), clock: clock, ready: { _, _ in }, report: { _, final in
                reports.withLock { $0.append(final) }
            })
        }
        try await clock.waitForSleepers(1, timeout: .seconds(10))
        await clock.advance(by: .seconds(10))
        try await waitUntil("a status report", timeout: .seconds(10)) { reports.withLock { $0 } == [false] }
        let cancelled = ContinuousClock.now
        running.cancel()
        try await running.value
        #expect(reports.withLock { $0 } == [false, true])
        #expect(ContinuousClock.now - cancelled < .seconds(5))
    }
}
