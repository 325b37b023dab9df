import CamflowTesting
import Foundation
import Testing

/// Runs an external program (ffmpeg, script) to its end, with captured output.
func runTool(_ path: String, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
}

/// Starts the Python subscriber of docs/clients with Debian's python3 (which has python3-zmq).
func startSubscriber(endpoint: String, out: String, frames: Int) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    process.arguments = [repositoryRoot.appendingPathComponent("docs/clients/subscriber.py").path,
                         "--endpoint", endpoint, "--stream", "cam1", "--out", out, "--frames", "\(frames)",
                         "--idle-timeout", "20"]
    process.standardOutput = Pipe()
    process.standardError = Pipe()
    try process.run()
    return process
}

func finish(_ process: Process, timeout: Duration = .seconds(60)) async throws -> (status: Int32, stdout: String) {
    let deadline = ContinuousClock.now + timeout
    while process.isRunning {
        guard ContinuousClock.now < deadline else {
            process.terminate()
            Issue.record("the subscriber did not finish")
            throw CancellationError()
        }
        try await Task.sleep(for: .milliseconds(20))
    }
    let data = (process.standardOutput as? Pipe)?.fileHandleForReading.readDataToEndOfFile() ?? Data()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Decodes an H.264 file; returns the decoded frame count and ffmpeg's complaints.
func decode(_ path: String) throws -> (frames: Int, errors: String) {
    let errors = try runTool("/usr/bin/ffmpeg", ["-v", "error", "-i", path, "-f", "null", "-"]).stderr
    let probe = try runTool("/usr/bin/ffprobe", ["-v", "error", "-count_frames", "-select_streams", "v:0",
                                                 "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path])
    return (Int(probe.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1, errors)
}

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

    @Test func pythonSubscriber_decodesEveryPublishedVideoFrame() async throws {
        let pipeline = try temporaryPipeline("""
            nodes:
              cam1: { type: file-replay, path: \(repositoryRoot.path)/Tests/Fixtures/h264-main-aac.mp4 }
              parse: { type: mp4-parse, inputs: [cam1], frames: true }
              publish:
                type: zmq-publish
                inputs: [parse]
                endpoint: tcp://127.0.0.1:*
                wait-for-subscribers: 2
            """)
        let run = try CamflowProcess(["run", pipeline])
        let endpoint = try await publishedEndpoint(run)
        let out = temporaryFile("cam1.h264")
        let client = try startSubscriber(endpoint: endpoint, out: out, frames: 150)
        let status = try await run.waitForExit()
        #expect(status == 0, "\(run.stderr)")
        let result = try await finish(client)
        #expect(result.status == 0)
        #expect(result.stdout.contains("cam1/init 1"))
        // The fixture's 150 video frames, all of them: the client stops at the last one.
        #expect(result.stdout.contains("video-frames-written 150"), "\(result.stdout)")
        let decoded = try decode(out)
        #expect(decoded.errors.isEmpty, "\(decoded.errors)")
        #expect(decoded.frames == 150)
        #expect(summaryRow(run.stderr, node: "publish")?.dropped == 0)
    }

    @Test func lateSubscriber_decodesFromItsFirstKeyframe_thanksToTheLatch() async throws {
        let sim = try CamflowProcess(["sim", "--port", "0", "--speed", "4"])
        defer { sim.process.terminate() }
        try await sim.waitForOutput(lines: 1)
        let url = String(sim.stdout.split(separator: "\n")[0].dropFirst("camera 1: ".count))
        let pipeline = try temporaryPipeline("""
            nodes:
              cam1: { type: instar-camera, url: "\(url)", username: admin, password: instar }
              parse: { type: mp4-parse, inputs: [cam1], frames: true }
              keyframes: { type: keyframes, inputs: [parse] }
              publish: { type: zmq-publish, inputs: [keyframes], endpoint: "tcp://127.0.0.1:*" }
              log: { type: log, inputs: [parse], every: 50 }
            """)
        let run = try CamflowProcess(["run", pipeline])
        let endpoint = try await publishedEndpoint(run)
        // Join once the init segment has long gone out (over 100 packets later).
        try await run.waitForOutput(lines: 3)
        let out = temporaryFile("late.h264")
        let client = try startSubscriber(endpoint: endpoint, out: out, frames: 60)
        let result = try await finish(client)
        run.process.interrupt()
        _ = try await run.waitForExit()
        #expect(result.status == 0, "\(result.stdout)")
        #expect(result.stdout.contains("video-frames-written 60"))
        let decoded = try decode(out)
        #expect(decoded.errors.isEmpty, "\(decoded.errors)")
        #expect(decoded.frames == 60)
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
