import CamflowTesting
import Camflow
import Logging
import NIOCore
import Testing

/// The node API's rules, each held by the engine: producers learn when
/// nobody reads them, a bad packet costs that packet only, one task at a
/// time uses a node's output, and restart backoff runs on the pipeline's clock.
@Suite struct EngineRulesTests {
    private struct StartFailure: Error {}

    /// A sink that fails at once: it never reads.
    private static let failingSink = NodeType(name: "failing-sink", summary: "fails at start", accepts: .all, emits: .nothing) { _ in
        ClosureSource { _ in throw StartFailure() }
    }

    /// A sink that counts what it gets.
    private static func counter(_ count: Shared<Int>) -> NodeType {
        NodeType(name: "counter", summary: "counts", accepts: .all, emits: .nothing) { _ in
            ClosureSource { context in for await _ in context.input { count.update { $0 += 1 } } }
        }
    }

    @Test func aSourceWhoseOnlyConsumerFailed_stopsReading() async throws {
        let received = Shared<Int>(0), spilled = Shared<Int>(0)
        let registry = TestNodes.registry(
            TestNodes.source(name: "paced", count: nil), TestNodes.source(name: "endless", count: nil, emitted: spilled),
            Self.counter(received), Self.failingSink)
        let kept = [NodeSpec(id: "src", type: "paced"), NodeSpec(id: "sink", type: "counter", inputs: ["src"])]
        let validator = GraphValidator(registry: registry)
        let pipeline = Pipeline(graph: try validator.validate(PipelineSpec(name: "flow", nodes: kept)),
                                logger: Logger(label: "test"), metricsInterval: nil)
        let run = Task { try await pipeline.run() }
        try await waitUntil("packets") { received.value >= 10 }

        // A reload adds a source whose only consumer cannot start: the rest runs on
        // (a start failure), and the source must not read on into a discarding edge.
        try pipeline.reload(to: try validator.validate(PipelineSpec(name: "flow", nodes: kept + [
            NodeSpec(id: "extra", type: "endless"), NodeSpec(id: "broken", type: "failing-sink", inputs: ["extra"]),
        ])))
        try await waitUntil("the orphaned source ran, then stopped", timeout: .seconds(10)) {
            spilled.value > 0 && pipeline.snapshot().nodes.first { $0.id == "extra" }?.running == false
        }
        let atStop = spilled.value
        let before = received.value
        try await waitUntil("the kept branch runs on") { received.value >= before + 50 }
        #expect(spilled.value == atStop, "the stopped source read nothing more")
        // At most what the edge held and one batch besides before the drop was seen.
        #expect(atStop <= NodeSpec.defaultCapacity + 64 + 1, "\(atStop) packets read for nobody")
        pipeline.requestStop()
        try await run.value
    }

    /// Refuses odd sequence numbers as bad, passes the rest on.
    private struct PickyProcessor: PacketProcessor {
        mutating func process(_ packet: Packet, _ context: NodeContext) async throws {
            guard packet.sequence % 2 == 0 else { throw BadPacket("odd sequence \(packet.sequence)") }
            await context.emit(packet)
        }
    }

    @Test func aProcessorsBadPacket_isAnEvent_notARestart() async throws {
        let picky = NodeType(name: "picky", summary: "refuses odd packets", accepts: .all, emits: .kinds(.all)) { _ in PickyProcessor() }
        let run = try await TestHarness(nodeTypes: [TestNodes.source(count: 10), picky]).run([
            NodeSpec(id: "src", type: "test-source"),
            NodeSpec(id: "picky", type: "picky", inputs: ["src"], restart: RestartPolicy(mode: .onFailure)),
        ], collect: ["picky"])
        let out = run.packets["picky"] ?? []
        #expect(out.filter { $0.kind == .frame }.map(\.sequence) == [0, 2, 4, 6, 8])
        let events = out.compactMap(\.event).filter { $0.name == "bad-packet" }
        #expect(events.count == 5)
        #expect(events.first?["reason"] == .string("odd sequence 1") && events.first?["node"] == .string("picky"))
        let counters = try #require(run.snapshot.nodes.first { $0.id == "picky" }).counters
        #expect(counters.badPackets == 5 && counters.restarts == 0 && counters.failures == 0)
    }

    #if DEBUG
    @Test func emittingFromTwoTasksAtOnce_trapsNamingTheNode() async {
        await #expect(processExitsWith: .failure) {
            // Two tasks emit into an edge nobody reads: the first to find it full
            // waits inside emit, and the other's emit must trap, not corrupt the batch.
            let twoTasks = NodeType(name: "two-tasks", summary: "emits from two tasks", accepts: [], emits: .kinds(.frame)) { _ in
                ClosureSource { context in
                    let packet = Packet(kind: .frame, stream: "s", sequence: 0, payload: ByteBuffer())
                    await withTaskGroup(of: Void.self) { group in
                        for _ in 0..<2 { group.addTask { while true { await context.emit(packet) } } }
                    }
                }
            }
            let stuck = NodeType(name: "stuck", summary: "never reads", accepts: .all, emits: .nothing) { _ in
                ClosureSource { _ in try await Task.sleep(for: .seconds(3600)) }
            }
            let graph = try! GraphValidator(registry: TestNodes.registry(twoTasks, stuck)).validate(PipelineSpec(
                name: "trap", nodes: [NodeSpec(id: "twins", type: "two-tasks"), NodeSpec(id: "stuck", type: "stuck", inputs: ["twins"])]))
            try? await Pipeline(graph: graph, logger: Logger(label: "test"), metricsInterval: nil).run()
        }
    }
    #endif

    @Test func restartBackoff_followsThePipelinesClock() async throws {
        let attempts = Shared<Int>(0)
        let flaky = NodeType(name: "flaky", summary: "fails each run", accepts: [], emits: .kinds(.frame)) { _ in
            ClosureSource { _ in
                attempts.update { $0 += 1 }
                throw StartFailure()
            }
        }
        let received = Shared<[Packet]>([])
        let graph = try GraphValidator(registry: TestNodes.registry(flaky, TestNodes.sink(received: received))).validate(
            PipelineSpec(name: "backoff", nodes: [
                NodeSpec(id: "flaky", type: "flaky", restart: RestartPolicy(mode: .onFailure, maxRestarts: 3,
                                                                            backoff: .seconds(10), maxBackoff: .seconds(60))),
                NodeSpec(id: "sink", type: "test-sink", inputs: ["flaky"]),
            ]))
        let clock = ManualClock()
        let started = ContinuousClock.now
        let pipeline = Pipeline(graph: graph, logger: Logger(label: "test"), metricsInterval: nil, clock: clock)
        let run = Task { try await pipeline.run() }
        // Backoffs of 10, 20 and 40 s: each ends when the clock passes it, not before.
        for (restart, backoff) in [(1, 10), (2, 20), (3, 40)] {
            try await clock.waitForSleepers(1)
            #expect(attempts.value == restart)
            await clock.advance(by: .seconds(backoff) - .milliseconds(1))
            #expect(attempts.value == restart, "restart \(restart) waits its whole backoff")
            await clock.advance(by: .milliseconds(1))
            try await waitUntil("attempt \(restart + 1)") { attempts.value == restart + 1 }
        }
        await #expect(throws: PipelineFailure.self) { try await run.value }
        #expect(ContinuousClock.now - started < .seconds(5), "70 s of backoff took \(ContinuousClock.now - started) of wall time")
    }
}
