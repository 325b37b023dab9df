import InstarSimulator
import CamflowTesting
import Camflow
import Foundation
import InstarPlugin
import NIOCore
import Synchronization
import Testing

@Suite struct TLSTests {
    static let certificate = try? SelfSignedCertificate()

    func tlsConfiguration() throws -> CameraSimulatorConfiguration {
        let certificate = try #require(Self.certificate)
        return simulatorConfiguration { $0.tls = certificate }
    }

    func run(_ url: String, _ options: [String: OptionValue]) async throws -> [Packet] {
        try await harness.run([camera(url, options)], collect: ["cam"], stopWhen: {
            let packets = $0["cam"] ?? []
            return packets.contains { $0.kind == .bytes } || events(packets, named: "disconnected").count >= 2
        }).packets["cam"] ?? []
    }

    @Test func insecure_acceptsTheSelfSignedCertificate() async throws {
        let packets = try await withSimulator(try tlsConfiguration()) { urls in
            #expect(urls[0].hasPrefix("wss://"))
            return try await run(urls[0], ["insecure": "true"])
        }
        #expect(packets.contains { $0.kind == .bytes })
    }

    @Test func caFile_trustsTheCamerasCertificate() async throws {
        let certificate = try #require(Self.certificate)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-ca-\(UUID().uuidString).pem").path
        try certificate.certificatePEM.write(toFile: path, atomically: true, encoding: .utf8)
        let packets = try await withSimulator(try tlsConfiguration()) { urls in
            try await run(urls[0], ["ca-file": .scalar(path)])
        }
        #expect(packets.contains { $0.kind == .bytes })
    }

    @Test func verifyMode_refusesTheSelfSignedCertificate() async throws {
        let packets = try await withSimulator(try tlsConfiguration()) { urls in
            try await run(urls[0], [:])
        }
        #expect(!packets.contains { $0.kind == .bytes })
        let reasons = events(packets, named: "disconnected").compactMap { $0["reason"]?.description }
        #expect(reasons.first?.lowercased().contains("certificate") == true, "\(reasons)")
    }
}

@Suite struct BackpressureTests {
    @Test func blockedSink_stopsTheSourceReading() async throws {
        let gate = Gate()
        let received = Counter()
        let blocking = NodeType(name: "blocking-sink", summary: "", accepts: .all, emits: .nothing) { _ in
            BlockingSink(gate: gate, received: received)
        }
        let harness = TestHarness(plugins: [InstarPlugin.self], nodeTypes: [blocking])
        // 10x speed: a 2 s fragment every 200 ms, and random cuts make many messages.
        let configuration = simulatorConfiguration { $0.chunking = .box; $0.speed = 20 }
        let snapshot = try await withSimulator(configuration) { urls in
            try await withThrowingTaskGroup(of: PipelineSnapshot?.self) { group in
                let graph = try GraphValidator(registry: harness.registry).validate(PipelineSpec(name: "bp", nodes: [
                    camera(urls[0]),
                    NodeSpec(id: "sink", type: "blocking-sink", inputs: ["cam"], capacity: 4),
                ]))
                let pipeline = Pipeline(graph: graph, logger: harness.logger, metricsInterval: nil)
                group.addTask {
                    try await pipeline.run()
                    return nil
                }
                // The sink holds its first packet; the edge fills up.
                try await waitUntil("the edge is full") { pipeline.snapshot().edges.first?.depth == 4 }
                // A window to watch, not a wait for something: 2 s of wall time is 40 s of media
                // at 20x, dozens of messages the camera wants to send. One more message may be in
                // hand, waiting for room (however loaded the machine, it is counted within the
                // window); nothing after it is read.
                try await Task.sleep(for: .seconds(2))
                let later = pipeline.snapshot()
                let atFull = later.node("cam")?.counters.packetsOut ?? 0
                #expect(atFull <= 4 + 1 + 1, "edge capacity, the one the sink holds, the one waiting for room")
                #expect(later.edges.first?.maxDepth == 4)
                gate.open()
                try await waitUntil("the sink takes packets again") { received.value > Int(atFull) + 5 }
                pipeline.requestStop()
                _ = try await group.next()
                return pipeline.snapshot()
            }
        }
        #expect((snapshot.edges.first?.maxDepth ?? 99) <= 4)
    }
}

struct BlockingSink: Node {
    let gate: Gate
    let received: Counter
    func run(_ context: NodeContext) async throws {
        for await _ in context.input {
            await gate.wait()
            received.increment()
        }
    }
}

final class Counter: Sendable {
    private let count = Mutex(0)
    var value: Int { count.withLock { $0 } }
    func increment() { count.withLock { $0 += 1 } }
}

