import Camflow
import Logging
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// One run of the engine benchmark: `packets` packets sharing one payload,
/// through `chainLength` pass-through nodes into a null sink.
struct EngineBenchmark {
    struct Result {
        var seconds: Double
        var packetsPerSecond: Double
        var nanosecondsPerHop: Double
        var peakResidentKiB: Int
    }

    let chainLength: Int
    let payloadSize: Int
    let packets: Int

    func run() async throws -> Result {
        var nodes = [NodeSpec(id: "source", type: "bench-source",
                              options: ["count": .scalar("\(packets)"), "payload-size": .scalar("\(payloadSize)")])]
        for index in 0..<chainLength {
            nodes.append(NodeSpec(id: "pass\(index)", type: "pass", inputs: [nodes[index].id]))
        }
        nodes.append(NodeSpec(id: "sink", type: "null", inputs: [nodes[chainLength].id]))
        let graph = try GraphValidator(registry: NodeRegistry(plugins: [BenchPlugin.self]))
            .validate(PipelineSpec(name: "bench", nodes: nodes))
        let pipeline = Pipeline(graph: graph, logger: Logger(label: "bench"), metricsInterval: nil)
        let clock = ContinuousClock()
        let start = clock.now
        try await pipeline.run()
        let seconds = (clock.now - start).seconds
        let received = pipeline.snapshot().node("sink")?.counters.packetsIn ?? 0
        guard received == UInt64(packets) else {
            throw BenchmarkError(message: "the sink received \(received) of \(packets) packets")
        }
        let hops = Double(chainLength + 1)
        return Result(
            seconds: seconds, packetsPerSecond: Double(packets) / seconds,
            nanosecondsPerHop: seconds * 1e9 / (Double(packets) * hops),
            peakResidentKiB: ResourceUsage.peakResidentKiB())
    }
}

struct BenchmarkError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Node types only the benchmark uses.
enum BenchPlugin: CamflowPlugin {
    static let name = "bench"
    static var nodeTypes: [NodeType] {
        [
            NodeType(
                name: "bench-source", summary: "Emits count packets that share one payload.",
                options: [OptionSpec("count", .integer, required: true, "Packets to emit."),
                          OptionSpec("payload-size", .size, required: true, "Payload bytes.")],
                accepts: [], emits: .kinds(.bytes),
                make: { options in
                    BenchSource(count: try options.integer("count") ?? 0, payloadSize: try options.size("payload-size") ?? 0)
                }),
            NodeType(name: "pass", summary: "Passes packets on unchanged.", accepts: .all, emits: .inputKinds,
                     make: { _ in PassThrough() }),
        ]
    }
}

struct BenchSource: Node {
    let count: Int
    let payloadSize: Int

    func run(_ context: NodeContext) async throws {
        var payload = ByteBufferAllocator().buffer(capacity: payloadSize)
        payload.writeRepeatingByte(0x42, count: payloadSize)
        let receivedAt = MonotonicClock.now()
        for sequence in 0..<count {
            await context.emit(Packet(kind: .bytes, stream: "bench", sequence: UInt64(sequence), payload: payload,
                                      receivedAt: receivedAt))
        }
    }
}

struct PassThrough: PacketProcessor {
    func process(_ packet: Packet, _ context: NodeContext) async throws {
        await context.emit(packet)
    }
}
