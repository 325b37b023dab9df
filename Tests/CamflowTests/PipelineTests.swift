import CamflowTesting
import Camflow
import Logging
import NIOCore
import Synchronization
import Testing

/// The scheduler with real tasks: backpressure, fan-in and fan-out, end of
/// stream, restarts, failures and graceful stop.
@Suite struct PipelineTests {
    @Test func slowSink_suspendsTheProducer_andNoEdgeExceedsItsCapacity() async throws {
        let emitted = Shared(0)
        let received = Shared<[Packet]>([])
        let gate = Gate()
        let registry = TestNodes.registry(
            TestNodes.source(count: 200, emitted: emitted),
            TestNodes.sink(received: received, gate: gate))
        let graph = try GraphValidator(registry: registry).validate(PipelineSpec(name: "t", nodes: [
            NodeSpec(id: "src", type: "test-source"),
            NodeSpec(id: "sink", type: "test-sink", inputs: ["src"], capacity: 8),
        ]))
        let pipeline = Pipeline(graph: graph, logger: Logger(label: "t"), metricsInterval: nil)
        async let done: Void = pipeline.run()

        // The sink holds its first packet; the edge fills and the source stops.
        try await waitUntil("the edge is full") { pipeline.snapshot().edges[0].depth == 8 }
        for _ in 0..<100 { await Task.yield() }
        let sent = emitted.value
        #expect(sent <= 8 + 64, "the source ran ahead of a blocked sink: \(sent) packets")
        #expect(received.value.isEmpty)

        gate.open()
        try await done
        let snapshot = pipeline.snapshot()
        #expect(received.value.map(\.sequence) == Array(0..<200))
        #expect(snapshot.edges[0].maxDepth <= 8)
        #expect(snapshot.edges[0].blockedNanoseconds > 0)
    }

    @Test func fanOutAndFanIn_deliverEverythingAndEndTheStream() async throws {
        let received = Shared<[Packet]>([])
        let registry = TestNodes.registry(
            TestNodes.source(name: "a", count: 300),
            TestNodes.source(name: "b", count: 200),
            TestNodes.sink(received: received))
        let snapshot = try await run([
            NodeSpec(id: "a", type: "a"),
            NodeSpec(id: "b", type: "b"),
            NodeSpec(id: "left", type: "queue", inputs: ["a", "b"]),
            NodeSpec(id: "right", type: "queue", inputs: ["a"]),
            NodeSpec(id: "sink", type: "test-sink", inputs: ["left", "right"]),
        ], registry: registry)
        let byStream = Dictionary(grouping: received.value, by: \.stream)
        #expect(byStream["a"]?.count == 600, "a reaches the sink through both queues")
        #expect(byStream["b"]?.count == 200)
        // Each input edge keeps its own order.
        let fromB = byStream["b"]?.map(\.sequence) ?? []
        #expect(fromB == Array(0..<200))
        #expect(snapshot.node("a")?.counters.packetsOut == 300)
        #expect(snapshot.node("sink")?.counters.packetsIn == 800)
    }

    @Test func aHealthyRun_resetsTheRestartCount() async throws {
        // Each run lasts 30 ms, then fails: with reset-after 20 ms every failure is a first one,
        // so a node allowed a single restart keeps being restarted (here until its sixth run).
        let attempts = Shared(0)
        let flaky = NodeType(name: "flaky", summary: "", accepts: .all, emits: .inputKinds) { _ in
            ClosureSource { context in
                let attempt = attempts.update({ $0 += 1; return $0 })
                try await Task.sleep(for: .milliseconds(30))
                if attempt < 6 { throw TestFailure(message: "fails once in a while") }
                for await packet in context.input { await context.emit(packet) }
            }
        }
        let received = Shared<[Packet]>([])
        let registry = TestNodes.registry(TestNodes.source(count: 5), flaky, TestNodes.sink(received: received))
        func runFlaky(resetAfter: Duration) async throws -> PipelineSnapshot {
            try await run([
                NodeSpec(id: "src", type: "test-source"),
                NodeSpec(id: "flaky", type: "flaky", inputs: ["src"],
                         restart: RestartPolicy(mode: .onFailure, maxRestarts: 1, backoff: .milliseconds(1),
                                                resetAfter: resetAfter)),
                NodeSpec(id: "sink", type: "test-sink", inputs: ["flaky"]),
            ], registry: registry)
        }
        let snapshot = try await runFlaky(resetAfter: .milliseconds(20))
        #expect(attempts.value == 6)
        #expect(snapshot.node("flaky")?.counters.restarts == 5)
        #expect(received.value.count == 5)
        // Without the reset, the second failure is one too many.
        attempts.update { $0 = 0 }
        await #expect(throws: PipelineFailure.self) { _ = try await runFlaky(resetAfter: .seconds(60)) }
    }

    @Test func onFailure_restartsWithBackoff_untilItSucceeds() async throws {
        let attempts = Shared(0)
        let received = Shared<[Packet]>([])
        let flaky = NodeType(name: "flaky", summary: "", accepts: .all, emits: .inputKinds) { _ in
            ClosureSource { context in
                if attempts.update({ $0 += 1; return $0 }) <= 2 { throw TestFailure(message: "not yet") }
                for await packet in context.input { await context.emit(packet) }
            }
        }
        let registry = TestNodes.registry(TestNodes.source(count: 50), flaky, TestNodes.sink(received: received))
        let snapshot = try await run([
            NodeSpec(id: "src", type: "test-source"),
            NodeSpec(id: "flaky", type: "flaky", inputs: ["src"],
                     restart: RestartPolicy(mode: .onFailure, maxRestarts: 3, backoff: .milliseconds(5))),
            NodeSpec(id: "sink", type: "test-sink", inputs: ["flaky"]),
        ], registry: registry)
        #expect(attempts.value == 3)
        #expect(snapshot.node("flaky")?.counters.restarts == 2)
        #expect(received.value.count == 50, "packets queued during the restarts are not lost")
    }

    @Test func backoffDoublesUpToTheLimit() {
        let policy = RestartPolicy(mode: .onFailure, backoff: .milliseconds(100), maxBackoff: .milliseconds(500))
        #expect((1...5).map { policy.delay(beforeAttempt: $0) }
            == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(500), .milliseconds(500)])
    }

    @Test func failureWithoutRestart_stopsThePipelineWithTheNodeNamed() async throws {
        let broken = NodeType(name: "broken", summary: "", accepts: .all, emits: .nothing) { _ in
            ClosureSource { context in
                _ = await context.input.next()
                throw TestFailure(message: "disk on fire")
            }
        }
        let registry = TestNodes.registry(TestNodes.source(count: nil), broken)
        do {
            try await run([
                NodeSpec(id: "src", type: "test-source"),
                NodeSpec(id: "writer", type: "broken", inputs: ["src"]),
            ], registry: registry)
            Issue.record("the run should fail")
        } catch let failure as PipelineFailure {
            #expect(failure.description == "node 'writer' (broken) failed: disk on fire")
        }
    }

    @Test func retriesExhausted_failTheRun() async throws {
        let attempts = Shared(0)
        let failing = NodeType(name: "failing", summary: "", accepts: [], emits: .kinds(.frame)) { _ in
            ClosureSource { _ in
                attempts.update { $0 += 1 }
                throw TestFailure(message: "refused")
            }
        }
        let registry = TestNodes.registry(failing, TestNodes.sink(received: Shared([])))
        await #expect(throws: PipelineFailure.self) {
            try await run([
                NodeSpec(id: "cam", type: "failing",
                         restart: RestartPolicy(mode: .onFailure, maxRestarts: 2, backoff: .milliseconds(1))),
                NodeSpec(id: "sink", type: "test-sink", inputs: ["cam"]),
            ], registry: registry)
        }
        #expect(attempts.value == 3)
    }

    @Test func gracefulStop_losesNothingAccepted() async throws {
        let received = Shared<[Packet]>([])
        let registry = TestNodes.registry(TestNodes.source(count: nil), TestNodes.sink(received: received))
        let graph = try GraphValidator(registry: registry).validate(PipelineSpec(name: "t", nodes: [
            NodeSpec(id: "src", type: "test-source"),
            NodeSpec(id: "buffer", type: "queue", inputs: ["src"],
                     options: ["max-packets": "500"]),
            NodeSpec(id: "sink", type: "test-sink", inputs: ["buffer"]),
        ]))
        let pipeline = Pipeline(graph: graph, logger: Logger(label: "t"), metricsInterval: nil)
        async let done: Void = pipeline.run()
        try await waitUntil("packets flow") { received.value.count >= 1000 }
        pipeline.requestStop()
        try await done
        let snapshot = pipeline.snapshot()
        let produced = snapshot.node("src")?.counters.packetsOut ?? 0
        #expect(produced >= 1000)
        #expect(UInt64(received.value.count) == produced)
        #expect(received.value.map(\.sequence) == Array(0..<produced))
        #expect(snapshot.nodes.allSatisfy { $0.counters.dropped == 0 })
    }

    @Test func dropPolicy_countsDropsInTheSnapshot() async throws {
        let received = Shared<[Packet]>([])
        let gate = Gate()
        let emitted = Shared(0)
        let registry = TestNodes.registry(TestNodes.source(count: 100, emitted: emitted),
                                          TestNodes.sink(received: received, gate: gate))
        let graph = try GraphValidator(registry: registry).validate(PipelineSpec(name: "t", nodes: [
            NodeSpec(id: "src", type: "test-source"),
            NodeSpec(id: "buffer", type: "queue", inputs: ["src"],
                     options: ["max-packets": "10", "when-full": "drop-newest"]),
            NodeSpec(id: "sink", type: "test-sink", inputs: ["buffer"], capacity: 1),
        ]))
        let pipeline = Pipeline(graph: graph, logger: Logger(label: "t"), metricsInterval: nil)
        async let done: Void = pipeline.run()
        // The sink is held, so the queue overflows while the source runs free.
        try await waitUntil("the source is done") { emitted.value == 100 }
        gate.open()
        try await done
        let snapshot = pipeline.snapshot()
        let dropped = snapshot.node("buffer")?.counters.dropped ?? 0
        #expect(dropped > 0)
        #expect(UInt64(received.value.count) + dropped == 100, "every packet is either delivered or counted")
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
