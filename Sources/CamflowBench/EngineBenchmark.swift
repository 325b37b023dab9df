import ArgumentParser
import Camflow
import CamflowCLI
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
                    BenchSource(count: try options.integer("count"), payloadSize: try options.size("payload-size"))
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

/// `camflow bench engine`: packets through chains of pass-through nodes.
struct EngineBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "Packets per second and ns per hop through chains of 1, 4 and 16 pass-through nodes.",
        discussion: """
            A source emits packets that share one payload buffer, through N pass-through nodes, \
            into a null sink. The same packet rate for 64 B and 1 MiB payloads shows that no \
            payload is copied. Peak memory is the process's maximum resident set so far.
            """)

    @Option(help: "Packets per run.")
    var packets: Int = 1_000_000

    @Option(help: "Chain lengths to run, comma-separated.")
    var chains: String = "1,4,16"

    func validate() throws {
        guard packets > 0 else { throw ValidationError("--packets must be positive") }
        guard parsedChains.count > 0 else { throw ValidationError("--chains: expected numbers such as 1,4,16") }
    }

    private var parsedChains: [Int] { chains.split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 } }

    func run() async throws {
        warnIfDebugBuild()
        var rows = [["chain", "payload", "packets", "seconds", "packets/s", "ns/hop", "payload GB/s", "peak RSS"]]
        for chain in parsedChains {
            for payload in [64, 1 << 20] {
                let result = try await EngineBenchmark(chainLength: chain, payloadSize: payload, packets: packets).run()
                rows.append([
                    "\(chain)", payload == 64 ? "64 B" : "1 MiB", "\(packets)",
                    result.seconds.text(3), result.packetsPerSecond.grouped,
                    result.nanosecondsPerHop.text(1),
                    (Double(packets) * Double(payload) / result.seconds / 1e9).text(1),
                    "\(result.peakResidentKiB / 1024) MiB",
                ])
                printError("done: chain \(chain), payload \(payload) B")
            }
        }
        print(TextTable.render(rows))
    }
}
