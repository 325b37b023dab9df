import InstarSimulator
import CamflowTesting
import Camflow
import Foundation
import InstarPlugin
import Logging
import MP4Plugin
import NIOCore
import Synchronization
import Testing

let fixtures = repositoryFile("Tests/Fixtures")

let cameraMedia: SimulatedMedia = {
    let data = (try? Data(contentsOf: fixtures.appendingPathComponent("h264-main-aac.mp4"))) ?? Data()
    // A broken fixture fails every test that uses it, loudly.
    return (try? SimulatedMedia(file: ByteBuffer(bytes: data)))!
}()

/// A simulator configuration for tests: fast media, short fixture.
func simulatorConfiguration(_ adjust: (inout CameraSimulatorConfiguration) -> Void = { _ in }) -> CameraSimulatorConfiguration {
    var configuration = CameraSimulatorConfiguration(media: cameraMedia)
    configuration.speed = 10
    adjust(&configuration)
    return configuration
}

/// Runs `body` with simulated cameras listening; stops them afterwards.
func withSimulator<T: Sendable>(_ configuration: CameraSimulatorConfiguration,
                                _ body: @Sendable ([String]) async throws -> T) async throws -> T {
    try await withSimulator(configuration) { _, urls in try await body(urls) }
}

/// Runs `body` with simulated cameras listening, and the simulator itself
/// (what its clients said); stops them afterwards.
func withSimulator<T: Sendable>(_ configuration: CameraSimulatorConfiguration,
                                _ body: @Sendable (CameraSimulator, [String]) async throws -> T) async throws -> T {
    let simulator = CameraSimulator(configuration: configuration, logger: Logger(label: "sim"))
    let (urls, continuation) = AsyncStream<[String]>.makeStream()
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            try await simulator.run { continuation.yield($0) }
            return nil
        }
        var iterator = urls.makeAsyncIterator()
        guard let listening = await iterator.next() else { throw CancellationError() }
        let result = try await body(simulator, listening)
        group.cancelAll()
        return result
    }
}

let harness = TestHarness(plugins: [InstarPlugin.self, MP4Plugin.self])

/// A camera node with fast timings for tests.
func camera(_ url: String, _ options: [String: OptionValue] = [:]) -> NodeSpec {
    var all: [String: OptionValue] = ["url": .scalar(url), "username": "admin", "password": "instar",
                                      "reconnect-min": "50ms", "reconnect-max": "200ms"]
    all.merge(options) { $1 }
    return NodeSpec(id: "cam", type: "instar-camera", options: all)
}

func events(_ packets: [Packet], named name: String) -> [Event] {
    packets.compactMap(\.event).filter { $0.name == name }
}

/// A pipeline running on a ``ManualClock`` in a task of its own, with what
/// one node emits recorded: for tests that move time by hand. (The shared
/// `TestHarness` runs on the system clock.)
final class ClockedRun: Sendable {
    let clock: ManualClock
    private let pipeline: Pipeline
    private let task: Task<Void, any Error>
    private let log = PacketLog()

    init(_ nodes: [NodeSpec], collect: String, clock: ManualClock) throws {
        self.clock = clock
        var registry = harness.registry
        let log = self.log
        registry.register(NodeType(name: "clocked-collect", summary: "Records packets.", accepts: .all, emits: .nothing,
                                   make: { _ in Recorder(log: log) }), from: "test")
        let graph = try GraphValidator(registry: registry).validate(PipelineSpec(
            name: "clocked", nodes: nodes + [NodeSpec(id: "collect", type: "clocked-collect", inputs: [collect])]))
        let pipeline = Pipeline(graph: graph, logger: Logger(label: "clocked"), metricsInterval: nil, clock: clock)
        self.pipeline = pipeline
        task = Task { try await pipeline.run() }
    }

    /// What the node emitted so far.
    var packets: [Packet] { log.packets.withLock { $0 } }

    func events(named name: String) -> [Event] { InstarPluginTests.events(packets, named: name) }

    /// Stops the pipeline and waits for it to end.
    func stop() async throws {
        pipeline.requestStop()
        try await task.value
    }

    private final class PacketLog: Sendable {
        let packets = Mutex<[Packet]>([])
    }

    private struct Recorder: Node {
        let log: PacketLog

        func run(_ context: NodeContext) async throws {
            for await packet in context.input { log.packets.withLock { $0.append(packet) } }
        }
    }
}
