import CamflowTesting
import Camflow
import Logging
import NIOCore
import Synchronization
import Testing

/// A value shared between a test and the nodes it builds.
final class Shared<Value: Sendable>: Sendable {
    private let box: Mutex<Value>
    init(_ value: Value) { box = Mutex(value) }
    var value: Value { box.withLock { $0 } }
    func update<R>(_ body: (inout Value) -> R) -> R { box.withLock { body(&$0) } }
}

/// Node types for engine tests, built from closures.
enum TestNodes {
    /// A source emitting `count` frame packets (nil: until stopped), every
    /// `keyframeEvery`-th a keyframe; counts what `emit` returned from.
    static func source(name: String = "test-source", count: Int?, emitted: Shared<Int>? = nil,
                       kind: PacketKind = .frame, payloadSize: Int = 10) -> NodeType {
        NodeType(name: name, summary: "test source", accepts: [], emits: .kinds(PacketKinds(kind))) { options in
            ClosureSource { context in
                var sequence: UInt64 = 0
                let payload = ByteBuffer(repeating: 7, count: payloadSize)
                while count.map({ sequence < $0 }) ?? true, !Task.isCancelled {
                    await context.emit(Packet(kind: kind, stream: options.nodeID, sequence: sequence, payload: payload,
                                              media: MediaInfo(timescale: 1000, dts: Int64(sequence) * 40,
                                                               keyframe: sequence % 5 == 0)))
                    sequence += 1
                    emitted?.update { $0 += 1 }
                }
            }
        }
    }

    /// A sink that records packets, after `gate` opens (if any).
    static func sink(name: String = "test-sink", accepts: PacketKinds = .all, received: Shared<[Packet]>,
                     gate: Gate? = nil) -> NodeType {
        NodeType(name: name, summary: "test sink", accepts: accepts, emits: .nothing) { _ in
            ClosureSource { context in
                for await packet in context.input {
                    await gate?.wait()
                    received.update { $0.append(packet) }
                }
            }
        }
    }

    static func registry(_ types: NodeType...) -> NodeRegistry {
        NodeRegistry(plugins: []).adding(types)
    }
}

/// A node whose run is a closure.
struct ClosureSource: Node {
    let body: @Sendable (NodeContext) async throws -> Void
    func run(_ context: NodeContext) async throws { try await body(context) }
}

extension NodeRegistry {
    /// A copy with extra types.
    func adding(_ types: [NodeType]) -> NodeRegistry {
        var copy = self
        for type in types { copy.register(type) }
        return copy
    }
}

/// Runs `spec` to completion with `registry`.
@discardableResult
func run(_ nodes: [NodeSpec], registry: NodeRegistry) async throws -> PipelineSnapshot {
    let graph = try GraphValidator(registry: registry).validate(PipelineSpec(name: "test", nodes: nodes))
    let pipeline = Pipeline(graph: graph, logger: Logger(label: "test"), metricsInterval: nil)
    try await pipeline.run()
    return pipeline.snapshot()
}
