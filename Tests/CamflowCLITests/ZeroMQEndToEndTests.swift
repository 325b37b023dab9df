import CamflowTesting
import Foundation
import Testing

/// The endpoint a zmq-publish node logged it publishes on.
func publishedEndpoint(_ process: CamflowProcess) async throws -> String {
    let deadline = ContinuousClock.now + .seconds(30)
    while true {
        if let line = process.stderr.split(separator: "\n").first(where: { $0.contains("publishing on tcp://") }),
           let range = line.range(of: "tcp://") {
            return String(line[range.lowerBound...].prefix { !$0.isWhitespace })
        }
        guard ContinuousClock.now < deadline, process.process.isRunning else {
            Issue.record("no 'publishing on' line:\n\(process.stderr)")
            throw CancellationError()
        }
        try await Task.sleep(for: .milliseconds(20))
    }
}

func temporaryFile(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("camflow-\(UUID().uuidString)-\(name)").path
}

@Suite struct ZeroMQEndToEndTests {
    @Test func withoutLibzmq_aZeroMQNodeFailsSayingWhat_andOtherPipelinesRun() async throws {
        let missing = ["CAMFLOW_LIBZMQ": "/nonexistent/libzmq.so.5"]
        let zmq = try temporaryPipeline("""
            nodes:
              cam1: { type: file-replay, path: \(repositoryRoot.path)/Tests/Fixtures/h264-main-aac.mp4 }
              publish: { type: zmq-publish, inputs: [cam1], endpoint: "tcp://127.0.0.1:*" }
            """)
        let failed = try await camflow("run", zmq, environment: missing)
        #expect(failed.status == 1, "\(failed.stderr)")
        #expect(failed.stderr.contains("cannot load libzmq (/nonexistent/libzmq.so.5)")
                    && failed.stderr.contains("install Debian's libzmq5"), "\(failed.stderr)")
        // CURVE keys are decoded by libzmq: without it, a clear error at load time too.
        let curve = try temporaryPipeline("""
            nodes:
              cam1: { type: file-replay, path: \(repositoryRoot.path)/Tests/Fixtures/h264-main-aac.mp4 }
              publish: { type: zmq-publish, inputs: [cam1], endpoint: "tcp://127.0.0.1:*", curve-server: true }
            """)
        let refused = try await camflow("validate", curve, environment: missing)
        #expect(refused.status == 2, "\(refused.stderr)")
        #expect(refused.stderr.contains("CURVE needs libzmq: loading libzmq failed: cannot load libzmq"), "\(refused.stderr)")
        // A pipeline without ZeroMQ nodes never needs the library.
        let plain = try temporaryPipeline("""
            nodes:
              cam1: { type: file-replay, path: \(repositoryRoot.path)/Tests/Fixtures/h264-main-aac.mp4 }
              parse: { type: mp4-parse, inputs: [cam1] }
              sink: { type: "null", inputs: [parse] }
            """)
        let ran = try await camflow("run", plain, environment: missing)
        #expect(ran.status == 0, "\(ran.stderr)")
    }

    @Test func twoProcessesChainedThroughTheBroker() async throws {
        let broker = try CamflowProcess(["broker", "--frontend", "tcp://127.0.0.1:*", "--backend", "tcp://127.0.0.1:*"])
        defer { broker.process.terminate() }
        try await broker.waitForOutput(lines: 2)
        let lines = broker.stdout.split(separator: "\n")
        let frontend = try #require(lines.first { $0.hasPrefix("frontend: ") }?.dropFirst(10))
        let backend = try #require(lines.first { $0.hasPrefix("backend: ") }?.dropFirst(9))
        let downstream = try temporaryPipeline("""
            nodes:
              sub: { type: zmq-subscribe, endpoint: "\(backend)", topics: [cam1/] }
              keyframes: { type: keyframes, inputs: [sub] }
              log: { type: log, inputs: [keyframes] }
            """)
        let consumer = try CamflowProcess(["run", downstream])
        let upstream = try temporaryPipeline("""
            nodes:
              cam1: { type: file-replay, path: \(repositoryRoot.path)/Tests/Fixtures/h264-main-aac.mp4, loop: true, rate: 1MiB/s }
              parse: { type: mp4-parse, inputs: [cam1], frames: true }
              publish: { type: zmq-publish, inputs: [parse], endpoint: "\(frontend)", connect: true }
            """)
        let producer = try CamflowProcess(["run", upstream])
        // Frames and keyframe events of cam1 come out of the second process.
        try await consumer.waitForLine { $0.hasPrefix("cam1 event ") && $0.contains(" keyframe track=1 ") }
        // Stopped upstream first, as an operator would.
        producer.process.interrupt()
        #expect(try await producer.waitForExit() == 0, "\(producer.stderr)")
        consumer.process.interrupt()
        let consumerStatus = try await consumer.waitForExit()
        #expect(consumerStatus == 0, "status \(consumerStatus):\n\(consumer.stderr)")
        broker.process.interrupt()
        #expect(try await broker.waitForExit() == 0, "\(broker.stderr)")
        let output = consumer.stdout.split(separator: "\n")
        #expect(output.contains { $0.hasPrefix("cam1 frame ") && $0.contains("avc1.4D4033") })
        #expect(output.contains { $0.hasPrefix("cam1 event ") && $0.contains(" keyframe track=1 ") })
        #expect(broker.stdout.contains("final: published "), "\(broker.stdout)")
    }
}
