import CamflowTesting
import Camflow
import Logging
import NIOCore
import Testing

/// A node a reload starts that cannot start (a port in use) is reported;
/// the pipeline runs on.
@Suite struct ReloadStartFailureTests {
    /// A paced source; a sink stamping what it gets with its `tag`, which fails at once when `fail` is set.
    private static func registry(received: Shared<[String]>) -> NodeRegistry {
        let source = NodeType(name: "paced", summary: "paced source", accepts: [], emits: .kinds(.frame)) { options in
            ClosureSource { context in
                var sequence: UInt64 = 0
                while !Task.isCancelled {
                    await context.emit(Packet(kind: .frame, stream: options.nodeID, sequence: sequence, payload: ByteBuffer()))
                    sequence += 1
                    try? await Task.sleep(for: .milliseconds(1))  // pacing, not synchronisation
                }
            }
        }
        let sink = NodeType(name: "tag-sink", summary: "records tags",
                            options: [OptionSpec("tag", .string, required: true, "the stamp"),
                                      OptionSpec("fail", .bool, default: "false", "fail at start")],
                            accepts: .all, emits: .nothing) { options in
            let tag = try options.string("tag")
            let fail = try options.bool("fail")
            return ClosureSource { context in
                if fail { throw StartFailure() }
                for await _ in context.input { received.update { $0.append(tag) } }
            }
        }
        var registry = TestNodes.registry(source, sink)
        for type in EnginePlugin.nodeTypes { registry.register(type) }
        return registry
    }

    private struct StartFailure: Error, CustomStringConvertible {
        var description: String { "address already in use\nby ws://admin:pa/ss@cam/ws" }
    }

    private func graph(_ registry: NodeRegistry, _ sinks: [(id: String, tag: String, fail: Bool)]) throws -> PipelineGraph {
        let nodes = [NodeSpec(id: "src", type: "paced"), NodeSpec(id: "events", type: "pipeline-events"),
                     NodeSpec(id: "watch", type: "events-sink", inputs: ["events"])]
            + sinks.map { NodeSpec(id: $0.id, type: "tag-sink", inputs: ["src"],
                                   options: ["tag": .scalar($0.tag), "fail": .scalar($0.fail ? "true" : "false")]) }
        return try GraphValidator(registry: registry).validate(PipelineSpec(name: "start", nodes: nodes))
    }

    @Test func anAddedNodeThatFailsToStart_isReported_andTheRestRunsOn() async throws {
        let received = Shared<[String]>([]), events = Shared<[Packet]>([])
        let registry = Self.registry(received: received).adding([TestNodes.sink(name: "events-sink", received: events)])
        let pipeline = Pipeline(graph: try graph(registry, [("a", "a", false)]), logger: Logger(label: "test"), metricsInterval: nil)
        let run = Task { try await pipeline.run() }
        try await waitUntil("packets") { received.value.count >= 10 }

        try pipeline.reload(to: try graph(registry, [("a", "a", false), ("b", "b", true)]))
        try await waitUntil("the failure's reload event") { events.value.contains { $0.event?["failed"] == .string("b") } }
        let failure = try #require(events.value.compactMap(\.event).first { $0["failed"] != nil })
        #expect(failure.name == "reload" && failure["error"] == .string("address already in use\\nby ws://admin:***@cam/ws") && failure["added"] == .int(1))
        #expect(pipeline.snapshot().lastReload?.contains("failed to start: node 'b' (tag-sink) failed: address already in use\\nby ws://admin:***@cam/ws") == true)
        let before = received.value.count
        try await waitUntil("the kept sink still gets packets") { received.value.count >= before + 20 }

        // The next reload starts it again, unchanged; still failing, it is reported again.
        let again = try pipeline.reload(to: try graph(registry, [("a", "a", false), ("b", "b", true)]))
        #expect(again.replaced == ["b"], "\(again)")
        try await waitUntil("the second failure") { events.value.filter { $0.event?["failed"] == .string("b") }.count == 2 }
        pipeline.requestStop()
        try await run.value  // no PipelineFailure: the run ends as a stop
    }

    @Test func aReplacedNodeWhoseNewSettingsFail_runsAgainWithItsPreviousOnes() async throws {
        let received = Shared<[String]>([]), events = Shared<[Packet]>([])
        let registry = Self.registry(received: received).adding([TestNodes.sink(name: "events-sink", received: events)])
        let pipeline = Pipeline(graph: try graph(registry, [("a", "old", false)]), logger: Logger(label: "test"), metricsInterval: nil)
        let run = Task { try await pipeline.run() }
        try await waitUntil("packets") { received.value.count >= 10 }

        try pipeline.reload(to: try graph(registry, [("a", "new", true)]))
        try await waitUntil("the failure's reload event") { events.value.contains { $0.event?["failed"] == .string("a") } }
        let before = received.value.count
        try await waitUntil("the previous settings run again") { received.value.count >= before + 20 }
        #expect(received.value[before...].allSatisfy { $0 == "old" })
        pipeline.requestStop()
        try await run.value
    }
}
