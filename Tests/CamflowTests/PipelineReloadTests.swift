import CamflowTesting
import Camflow
import Logging
import NIOCore
import Testing

/// Reloading a running pipeline: kept nodes keep running, replaced ones hand
/// over in order, removed ones drain, added ones start.
@Suite struct PipelineReloadTests {
    /// A paced source that counts its instances; a transform that stamps packets with its `tag` option.
    private static func types(started: Shared<Int>, received: Shared<[Packet]>, other: Shared<[Packet]>) -> NodeRegistry {
        let source = NodeType(name: "paced", summary: "paced source", accepts: [], emits: .kinds(.frame)) { options in
            ClosureSource { context in
                started.update { $0 += 1 }
                var sequence: UInt64 = 0
                while !Task.isCancelled {
                    await context.emit(Packet(kind: .frame, stream: options.nodeID, sequence: sequence, payload: ByteBuffer()))
                    sequence += 1
                    try? await Task.sleep(for: .milliseconds(1))  // pacing, not synchronisation
                }
            }
        }
        let tag = NodeType(name: "tag", summary: "stamps packets", options: [OptionSpec("tag", .string, required: true, "the stamp")],
                           accepts: .all, emits: .kinds(.frame)) { options in
            let stamp = try options.string("tag")
            return ClosureSource { context in
                for await packet in context.input {
                    var tagged = packet
                    tagged.stream = stamp
                    await context.emit(tagged)
                }
            }
        }
        return TestNodes.registry(source, tag, TestNodes.sink(received: received), TestNodes.sink(name: "other-sink", received: other))
    }

    private func graph(_ registry: NodeRegistry, tag: String, extraSink: Bool) throws -> PipelineGraph {
        var nodes = [
            NodeSpec(id: "src", type: "paced"),
            NodeSpec(id: "tagger", type: "tag", inputs: ["src"], options: ["tag": .scalar(tag)]),
            NodeSpec(id: "sink", type: "test-sink", inputs: ["tagger"]),
        ]
        if extraSink { nodes.append(NodeSpec(id: "extra", type: "other-sink", inputs: ["src"])) }
        return try GraphValidator(registry: registry).validate(PipelineSpec(name: "reload", nodes: nodes))
    }

    @Test func aReload_keepsTheSource_replacesAChangedNodeInOrder_andAddsANewOne() async throws {
        let started = Shared(0), received = Shared<[Packet]>([]), other = Shared<[Packet]>([])
        let registry = Self.types(started: started, received: received, other: other)
        let pipeline = Pipeline(graph: try graph(registry, tag: "before", extraSink: false), logger: Logger(label: "test"),
                                metricsInterval: nil)
        let run = Task { try await pipeline.run() }
        try await waitUntil("packets through the first graph") { received.value.count >= 50 }

        let diff = try pipeline.reload(to: try graph(registry, tag: "after", extraSink: true))
        #expect(diff.kept == ["src", "sink"] && diff.replaced == ["tagger"] && diff.added == ["extra"] && diff.removed.isEmpty)
        #expect(diff.description == "kept 2, replaced 1 (tagger), added 1 (extra), removed 0")
        try await waitUntil("packets through the new graph") {
            received.value.filter { $0.stream == "after" }.count >= 50 && other.value.count >= 50
        }
        // The graph and the counters show the new graph at once.
        #expect(pipeline.graph.node("extra") != nil && pipeline.snapshot().node("extra") != nil && pipeline.snapshot().reloads == 1)

        // Removing the added sink again: it drains and ends; nothing else changes.
        let removal = try pipeline.reload(to: try graph(registry, tag: "after", extraSink: false))
        #expect(removal.removed == ["extra"] && removal.kept.count == 3)
        pipeline.requestStop()
        try await run.value

        #expect(started.value == 1, "the kept source ran once, never restarted")
        let sequences = received.value.map(\.sequence)
        #expect(sequences == Array(0..<UInt64(sequences.count)), "no packet lost or reordered across the hand-over")
        let firstAfter = try #require(received.value.firstIndex { $0.stream == "after" })
        #expect(received.value[firstAfter...].allSatisfy { $0.stream == "after" }, "the old instance's packets all come first")
    }

    @Test func anUnchangedGraph_changesNothing_andAStoppingPipelineRefusesAReload() async throws {
        let started = Shared(0), received = Shared<[Packet]>([]), other = Shared<[Packet]>([])
        let registry = Self.types(started: started, received: received, other: other)
        let pipeline = Pipeline(graph: try graph(registry, tag: "same", extraSink: false), logger: Logger(label: "test"),
                                metricsInterval: nil)
        let run = Task { try await pipeline.run() }
        try await waitUntil("packets") { received.value.count >= 10 }
        let diff = try pipeline.reload(to: try graph(registry, tag: "same", extraSink: false))
        #expect(diff.isEmpty && pipeline.snapshot().reloads == 0)
        pipeline.requestStop()
        #expect(throws: Pipeline.ReloadRefused.self) { try pipeline.reload(to: try graph(registry, tag: "x", extraSink: false)) }
        try await run.value
    }
}

/// Reloads in the awkward moments a hostile review found.
@Suite struct PipelineReloadEdgeTests {
    @Test func aSourceReplacedTwiceInARow_neverRunsTwoInstancesAtOnce() async throws {
        let active = Shared(0), mostActive = Shared(0), received = Shared<[Packet]>([])
        let source = NodeType(name: "slow-stopper", summary: "a source that takes a while to stop",
                              options: [OptionSpec("generation", .string, required: true, "which")],
                              accepts: [], emits: .kinds(.frame)) { _ in
            ClosureSource { context in
                let now = active.update { $0 += 1; return $0 }
                mostActive.update { $0 = max($0, now) }
                defer { active.update { $0 -= 1 } }
                var sequence: UInt64 = 0
                while !Task.isCancelled {
                    await context.emit(Packet(kind: .frame, stream: "s", sequence: sequence, payload: ByteBuffer()))
                    sequence += 1
                    try? await Task.sleep(for: .milliseconds(1))
                }
                // Stopping takes time, as a camera's goodbye does; a task's sleep ignores cancellation here.
                let start = ContinuousClock.now
                while ContinuousClock.now - start < .milliseconds(50) { await Task.yield() }
            }
        }
        let registry = TestNodes.registry(source, TestNodes.sink(received: received))
        func graph(_ generation: String) throws -> PipelineGraph {
            try GraphValidator(registry: registry).validate(PipelineSpec(name: "twice", nodes: [
                NodeSpec(id: "src", type: "slow-stopper", options: ["generation": .scalar(generation)]),
                NodeSpec(id: "sink", type: "test-sink", inputs: ["src"]),
            ]))
        }
        let pipeline = Pipeline(graph: try graph("1"), logger: Logger(label: "test"), metricsInterval: nil)
        let run = Task { try await pipeline.run() }
        try await waitUntil("packets") { received.value.count >= 10 }
        try pipeline.reload(to: try graph("2"))
        try pipeline.reload(to: try graph("3"))
        let before = received.value.count
        try await waitUntil("the third instance sends") { received.value.count >= before + 20 }
        pipeline.requestStop()
        try await run.value
        #expect(mostActive.value == 1, "instances of one source running at once: \(mostActive.value)")
    }

    @Test func aConsumerAddedToAProducerThatHasEnded_endsToo_andAFinishedPipelineRefusesReloads() async throws {
        let first = Shared<[Packet]>([]), second = Shared<[Packet]>([])
        let gate = Gate()
        let registry = TestNodes.registry(TestNodes.source(count: 5), TestNodes.sink(received: first, gate: gate),
                                          TestNodes.sink(name: "second-sink", received: second))
        func graph(_ withSecond: Bool) throws -> PipelineGraph {
            var nodes = [NodeSpec(id: "src", type: "test-source"), NodeSpec(id: "sink", type: "test-sink", inputs: ["src"])]
            if withSecond { nodes.append(NodeSpec(id: "late", type: "second-sink", inputs: ["src"])) }
            return try GraphValidator(registry: registry).validate(PipelineSpec(name: "ended", nodes: nodes))
        }
        let pipeline = Pipeline(graph: try graph(false), logger: Logger(label: "test"), metricsInterval: nil)
        let ended = Shared(false)
        let run = Task {
            defer { ended.update { $0 = true } }
            try await pipeline.run()
        }
        // The source has sent its five and ended; the sink holds the graph open behind its gate.
        try await waitUntil("the source ended") { pipeline.snapshot().node("src")?.running == false && pipeline.snapshot().node("src")?.counters.packetsOut == 5 }
        try pipeline.reload(to: try graph(true))
        gate.open()
        // The late sink must not wait for a producer that has ended.
        try await waitUntil("the run ends", timeout: .seconds(10)) { ended.value }
        try await run.value
        #expect(first.value.count == 5 && second.value.isEmpty)
        #expect(throws: Pipeline.ReloadRefused.self) { try pipeline.reload(to: try graph(false)) }
    }
}

@Suite struct PipelineEventsTests {
    @Test func eachReload_isOneReloadEvent_andANodeAddedByAReloadStartsWithItsEvent() async throws {
        let received = Shared<[Packet]>([]), ticks = Shared<[Packet]>([])
        var registry = TestNodes.registry(TestNodes.source(count: nil), TestNodes.sink(received: received),
                                          TestNodes.sink(name: "tick-sink", received: ticks))
        for type in EnginePlugin.nodeTypes { registry.register(type) }
        func graph(sinkCapacity: Int) throws -> PipelineGraph {
            try GraphValidator(registry: registry).validate(PipelineSpec(name: "events", nodes: [
                NodeSpec(id: "src", type: "test-source"),
                NodeSpec(id: "ticks", type: "tick-sink", inputs: ["src"]),
                NodeSpec(id: "events", type: "pipeline-events"),
                NodeSpec(id: "sink", type: "test-sink", inputs: ["events"], capacity: sinkCapacity),
            ]))
        }
        let pipeline = Pipeline(graph: try graph(sinkCapacity: 16), logger: Logger(label: "test"), metricsInterval: nil)
        let run = Task { try await pipeline.run() }
        try await waitUntil("packets flow") { ticks.value.count > 10 }
        // The sink is replaced (its capacity changed): the kept events node reports it to the new sink.
        try pipeline.reload(to: try graph(sinkCapacity: 8))
        try await waitUntil("the reload event") { received.value.contains { $0.event?.name == "reload" } }
        pipeline.requestStop()
        try await run.value
        let events = received.value.compactMap(\.event).filter { $0.name == "reload" }
        #expect(events.count == 1)
        #expect(events.first?["replaced"] == .int(1) && events.first?["kept"] == .int(3) && events.first?["added"] == .int(0))
        #expect(events.first?["changes"] == .string("kept 3, replaced 1 (sink), added 0, removed 0"))
        #expect(received.value.first?.stream == "events")
    }
}
