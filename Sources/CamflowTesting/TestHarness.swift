public import Camflow
public import Logging
import Synchronization

/// Runs a small graph in-process with real edges and tasks and collects what
/// reaches chosen nodes: the way to test a node or a plugin.
///
/// ```swift
/// let run = try await TestHarness(plugins: [MyPlugin.self]).run([
///     NodeSpec(id: "replay", type: "file-replay", options: ["path": "clip.mp4"]),
///     NodeSpec(id: "mine", type: "my-node", inputs: ["replay"]),
/// ], collect: ["mine"])
/// #expect(run.packets["mine"]?.count == 42)
/// ```
public struct TestHarness: Sendable {
    /// The registry graphs are checked against: the engine's nodes and the plugins'.
    public let registry: NodeRegistry
    public var logger: Logger

    /// - Parameters:
    ///   - plugins: plugins whose node types the graphs may use.
    ///   - nodeTypes: further types made in the test itself (a source of fixed packets, say).
    public init(plugins: [any CamflowPlugin.Type] = [], nodeTypes: [NodeType] = [],
                logger: Logger = Logger(label: "camflow.test")) {
        var registry = NodeRegistry(plugins: plugins)
        for type in nodeTypes { registry.register(type, from: "test") }
        self.registry = registry
        self.logger = logger
    }

    /// The outcome of one run.
    public struct Run: Sendable {
        /// Counters at the end.
        public let snapshot: PipelineSnapshot
        /// What each collected node emitted, by node id, in order.
        public let packets: [String: [Packet]]
    }

    /// Checks and runs `nodes` until they finish. Each id in `collect` gets
    /// a sink that records what that node emits.
    /// - Parameters:
    ///   - stopWhen: checked after each collected packet; when it returns
    ///     true the pipeline is asked to stop (sources end, the rest drains).
    ///   - clock: the time the nodes read: a ``ManualClock`` to move it by hand.
    public func run(_ nodes: [NodeSpec], collect: [String],
                    stopWhen: (@Sendable ([String: [Packet]]) -> Bool)? = nil,
                    clock: any PipelineClock = SystemClock()) async throws -> Run {
        let store = PacketStore(ids: collect)
        var registry = self.registry
        registry.register(NodeType(
            name: "test-harness-collect", summary: "Records packets for TestHarness.",
            accepts: .all, emits: .nothing,
            make: { options in CollectSink(store: store, id: String(options.nodeID.dropFirst("collect-".count))) }),
            from: "test-harness")
        let sinks = collect.map { NodeSpec(id: "collect-\($0)", type: "test-harness-collect", inputs: [$0]) }
        let graph = try GraphValidator(registry: registry).validate(PipelineSpec(name: "test", nodes: nodes + sinks))
        let pipeline = Pipeline(graph: graph, logger: logger, metricsInterval: nil, clock: clock)
        if let stopWhen { store.setCallback { if stopWhen($0) { pipeline.requestStop() } } }
        try await pipeline.run()
        return Run(snapshot: pipeline.snapshot(), packets: store.packets)
    }
}

/// Packets recorded by the harness's sinks.
private final class PacketStore: Sendable {
    private let state: Mutex<[String: [Packet]]>
    private let callback = Mutex<(@Sendable ([String: [Packet]]) -> Void)?>(nil)

    init(ids: [String]) {
        state = Mutex(Dictionary(uniqueKeysWithValues: ids.map { ($0, []) }))
    }

    var packets: [String: [Packet]] { state.withLock { $0 } }

    func setCallback(_ body: @escaping @Sendable ([String: [Packet]]) -> Void) {
        callback.withLock { $0 = body }
    }

    func append(_ packet: Packet, to id: String) {
        let all = state.withLock { state -> [String: [Packet]] in
            state[id, default: []].append(packet)
            return state
        }
        callback.withLock { $0 }?(all)
    }
}

private struct CollectSink: Node {
    let store: PacketStore
    let id: String

    func run(_ context: NodeContext) async throws {
        for await packet in context.input { store.append(packet, to: id) }
    }
}
