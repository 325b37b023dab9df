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
    let simulator = CameraSimulator(configuration: configuration, logger: Logger(label: "sim"))
    let (urls, continuation) = AsyncStream<[String]>.makeStream()
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            try await simulator.run { continuation.yield($0) }
            return nil
        }
        var iterator = urls.makeAsyncIterator()
        guard let listening = await iterator.next() else { throw CancellationError() }
        let result = try await body(listening)
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
