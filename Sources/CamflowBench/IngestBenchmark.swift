import ArgumentParser
import Camflow
import CamflowCLI
import Foundation
import InstarPlugin
import Logging
import MP4Plugin
import Synchronization

/// `camflow bench ingest`: N simulated cameras into
/// `instar-camera → mp4-parse → keyframes → stats → null`, with the simulator
/// in its own process so this process's CPU time is the pipeline's alone.
struct IngestBenchmark {
    struct Result {
        var cameras: Int
        var bytes: UInt64
        var wallSeconds: Double
        var cpuSeconds: Double
        var latencies: [Double]
        var peakResidentKiB: Int
    }

    let simulatorURLs: [String]
    let timelineOrigin: UInt64
    let speed: Double

    /// Runs `cameras` cameras: `warmup` to connect and settle, then `seconds` measured.
    func run(cameras: Int, warmup: Duration, seconds: Duration, logger: Logger) async throws -> Result {
        let latencies = LatencyRecorder(timelineOrigin: timelineOrigin, speed: speed)
        let sink = NodeType(name: "latency-sink", summary: "Records send-to-sink latency of fragments.",
                            accepts: .all, emits: .nothing) { _ in LatencySink(recorder: latencies) }
        var registry = NodeRegistry(plugins: [InstarPlugin.self, MP4Plugin.self])
        registry.register(sink, from: "bench")
        var nodes: [NodeSpec] = []
        var sinkInputs: [String] = []
        for index in 0..<cameras {
            let url = simulatorURLs[index]
            nodes.append(NodeSpec(id: "cam\(index)", type: "instar-camera", options: [
                "url": .scalar(url), "username": "admin", "password": "instar", "idle-timeout": "30s",
            ]))
            nodes.append(NodeSpec(id: "parse\(index)", type: "mp4-parse", inputs: ["cam\(index)"]))
            nodes.append(NodeSpec(id: "keyframes\(index)", type: "keyframes", inputs: ["parse\(index)"]))
            nodes.append(NodeSpec(id: "stats\(index)", type: "stats", inputs: ["keyframes\(index)"]))
            sinkInputs += ["keyframes\(index)", "stats\(index)"]
        }
        nodes.append(NodeSpec(id: "sink", type: "latency-sink", inputs: sinkInputs))
        let graph = try GraphValidator(registry: registry).validate(PipelineSpec(name: "bench-ingest", nodes: nodes))
        let pipeline = Pipeline(graph: graph, logger: logger, metricsInterval: nil)
        return try await withThrowingTaskGroup(of: Result?.self) { group in
            group.addTask {
                try await pipeline.run()
                return nil
            }
            try await Task.sleep(for: warmup)
            func cameraBytes() -> UInt64 {
                pipeline.snapshot().nodes.filter { $0.type == "instar-camera" }.reduce(0) { $0 + $1.counters.bytesOut }
            }
            latencies.reset()
            let bytesBefore = cameraBytes()
            let (wall, cpu) = try await CPUTime.measure(seconds)
            let bytes = cameraBytes() - bytesBefore
            let samples = latencies.values
            pipeline.requestStop()
            while try await group.next() != nil {}
            return Result(cameras: cameras, bytes: bytes, wallSeconds: wall, cpuSeconds: cpu, latencies: samples,
                          peakResidentKiB: ResourceUsage.peakResidentKiB())
        }
    }
}

/// Latency of each fragment from the moment the simulator's timeline had
/// it recorded (and sent it) to its arrival at the sink.
final class LatencyRecorder: Sendable {
    let timelineOrigin: UInt64
    let speed: Double
    private let samples = Mutex<[Double]>([])

    init(timelineOrigin: UInt64, speed: Double) {
        self.timelineOrigin = timelineOrigin
        self.speed = speed
    }

    func record(_ packet: Packet) {
        guard packet.kind == .fragment, let media = packet.media, media.timescale > 0,
              let dts = media.dts, let duration = media.duration else { return }
        let end = Double(dts + duration) / Double(media.timescale)
        let sent = Double(timelineOrigin) + end / speed * 1e9
        let latency = (Double(MonotonicClock.now()) - sent) / 1e6
        samples.withLock { $0.append(latency) }
    }

    func reset() { samples.withLock { $0.removeAll() } }
    var values: [Double] { samples.withLock { $0 } }
}

struct LatencySink: Node {
    let recorder: LatencyRecorder
    func run(_ context: NodeContext) async throws {
        for await packet in context.input { recorder.record(packet) }
    }
}

extension Array where Element == Double {
    /// The `p`-th percentile (0...100), nearest rank.
    func percentile(_ p: Double) -> Double? {
        guard !isEmpty else { return nil }
        let sorted = self.sorted()
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1
        return sorted[Swift.max(0, Swift.min(sorted.count - 1, rank))]
    }
}

/// `camflow bench ingest`: many simulated cameras into one pipeline.
struct IngestBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "N simulated cameras into instar-camera -> mp4-parse -> keyframes -> stats -> null.",
        discussion: """
            Starts 'camflow sim' in a separate process with the largest camera count, serving a \
            1440p H.264 + AAC fragmented MP4 at about 4 Mbit/s (made once with ffmpeg, or --media), \
            then runs one pipeline per camera count. CPU is this process's (the pipeline's) user + \
            system time over the measured window. Latency runs from the moment the simulator's \
            timeline has a fragment recorded (when it sends it) to the sink, across processes on \
            the system's monotonic clock.
            """)

    @Option(help: "Camera counts, comma-separated.")
    var cameras = "1,10,100,500"

    @OptionGroup var live: LiveBenchOptions

    private var counts: [Int] { LiveBenchOptions.counts(cameras) }

    func validate() throws { try live.validate(counts, option: "--cameras") }

    func run() async throws {
        warnIfDebugBuild()
        let path = try BenchTools.clip(live.media)
        let (simulator, urls, origin) = try await ChildProcess.simulator(media: path, cameras: counts.max() ?? 1)
        defer { withExtendedLifetime(simulator) {} }
        let bench = IngestBenchmark(simulatorURLs: urls, timelineOrigin: origin, speed: 1)
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        var rows = [["cameras", "Mbit/s in", "CPU s/GB", "CPU %/camera", "CPU % total", "p50 ms", "p99 ms", "fragments", "peak RSS"]]
        for count in counts {
            let result = try await bench.run(cameras: count, warmup: .seconds(live.warmup), seconds: .seconds(live.seconds),
                                             logger: logger)
            let gigabytes = Double(result.bytes) / 1e9
            rows.append([
                "\(count)", (Double(result.bytes) * 8 / 1e6 / result.wallSeconds).text(1),
                gigabytes > 0 ? (result.cpuSeconds / gigabytes).text(2) : "-",
                (result.cpuSeconds / result.wallSeconds / Double(count) * 100).text(3),
                (result.cpuSeconds / result.wallSeconds * 100).text(1),
                result.latencies.percentile(50).map { $0.text(1) } ?? "-",
                result.latencies.percentile(99).map { $0.text(1) } ?? "-",
                "\(result.latencies.count)", "\(result.peakResidentKiB / 1024) MiB",
            ])
            printError("done: \(count) cameras")
        }
        print(TextTable.render(rows))
    }
}
