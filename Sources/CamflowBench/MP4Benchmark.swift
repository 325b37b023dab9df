import ArgumentParser
import Camflow
import CamflowCLI
import Foundation
import ISOBMFF
import Logging
import MP4Plugin
import NIOCore

/// `camflow bench mp4`: parse + keyframes + stats over an in-memory fMP4,
/// against ffprobe (and GStreamer's qtdemux when installed) on the same file.
struct MP4Benchmark {
    struct Row {
        var name: String
        var bytes: Int
        var fragments: Int
        var wallSeconds: Double
        var cpuSeconds: Double?
    }

    let media: Data
    /// Bytes pushed through the pipeline per run (the file, repeated).
    let totalBytes: Int

    /// Runs the camflow pipeline over `media` repeated to `totalBytes`.
    func camflow(frames: Bool) async throws -> Row {
        let payload = ByteBuffer(bytes: media)
        let passes = max(1, totalBytes / max(payload.readableBytes, 1))
        let source = NodeType(name: "memory-replay", summary: "Emits an in-memory file, repeated.", accepts: [],
                              emits: .kinds(.bytes)) { _ in MemoryReplay(file: payload, passes: passes, chunkSize: 64 << 10) }
        var registry = NodeRegistry(plugins: [MP4Plugin.self])
        registry.register(source, from: "bench")
        let nodes = [
            NodeSpec(id: "cam", type: "memory-replay"),
            NodeSpec(id: "parse", type: "mp4-parse", inputs: ["cam"], options: ["frames": .scalar("\(frames)")]),
            NodeSpec(id: "keyframes", type: "keyframes", inputs: ["parse"]),
            NodeSpec(id: "stats", type: "stats", inputs: ["keyframes"]),
            NodeSpec(id: "sink", type: "null", inputs: ["keyframes", "stats"]),
        ]
        let graph = try GraphValidator(registry: registry).validate(PipelineSpec(name: "bench-mp4", nodes: nodes))
        let pipeline = Pipeline(graph: graph, logger: Logger(label: "bench"), metricsInterval: nil)
        let cpuBefore = CPUTime.now()
        let clock = ContinuousClock()
        let start = clock.now
        try await pipeline.run()
        let wall = (clock.now - start).seconds
        let cpu = CPUTime.now() - cpuBefore
        let snapshot = pipeline.snapshot()
        let parsed = snapshot.node("parse")
        guard snapshot.node("cam")?.counters.bytesOut == UInt64(passes * payload.readableBytes),
              (parsed?.counters.dropped ?? 1) == 0 else {
            throw BenchmarkError(message: "the parser reported errors or lost bytes")
        }
        let fragments = passes * Self.fragmentCount(payload)
        return Row(name: "camflow parse+keyframes+stats" + (frames ? ", frames: true" : ""),
                   bytes: passes * payload.readableBytes, fragments: fragments, wallSeconds: wall, cpuSeconds: cpu)
    }

    /// Fragments in one pass of the file.
    static func fragmentCount(_ file: ByteBuffer) -> Int {
        var parser = StreamingParser()
        parser.append(file)
        var count = 0
        while let item = try? parser.next() {
            if case .fragment = item { count += 1 }
        }
        return count
    }

    /// Runs an external tool on the file `repeats` times; nil when it is not installed.
    func external(_ name: String, _ arguments: [String], repeats: Int) throws -> Row? {
        guard let tool = Self.which(arguments[0]) else { return nil }
        let cpuBefore = CPUTime.children()
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<repeats {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: tool)
            process.arguments = Array(arguments.dropFirst())
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                throw BenchmarkError(message: "\(arguments[0]) failed with status \(process.terminationStatus)")
            }
        }
        return Row(name: name, bytes: media.count * repeats, fragments: 0, wallSeconds: (clock.now - start).seconds,
                   cpuSeconds: CPUTime.children() - cpuBefore)
    }

    static func which(_ tool: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// The file to benchmark with: `given`, or the generated 1440p clip (made on first use).
    static func media(_ given: String?) throws -> String {
        if let given { return given }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-bench-1440p.mp4").path
        if !FileManager.default.fileExists(atPath: path) {
            printError("making \(path) with ffmpeg (once)...")
            try generateMedia(at: path, seconds: 20)
        }
        return path
    }

    /// A 1440p, ~4 Mbit/s H.264 + AAC fragmented MP4 like the camera's, made with ffmpeg once.
    static func generateMedia(at path: String, seconds: Int) throws {
        guard let ffmpeg = which("ffmpeg") else {
            throw BenchmarkError(message: "ffmpeg is needed to make the benchmark media (apt-get install -y ffmpeg), or pass --media FILE")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ffmpeg)
        process.arguments = [
            "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=2560x1440:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", "\(seconds)", "-c:v", "libx264", "-profile:v", "main", "-preset", "ultrafast", "-b:v", "4M",
            "-maxrate", "4M", "-bufsize", "8M", "-g", "50", "-sc_threshold", "0", "-c:a", "aac", "-b:a", "64k",
            "-movflags", "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", path,
        ]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw BenchmarkError(message: "ffmpeg could not make \(path)") }
    }
}

/// Emits an in-memory file `passes` times in chunks that are slices of it.
struct MemoryReplay: Node {
    let file: ByteBuffer
    let passes: Int
    let chunkSize: Int

    func run(_ context: NodeContext) async throws {
        var sequence: UInt64 = 0
        for pass in 0..<passes {
            var rest = file
            var first = true
            while let chunk = rest.readSlice(length: min(chunkSize, rest.readableBytes)), chunk.readableBytes > 0 {
                await context.emit(Packet(kind: .bytes, stream: "cam", sequence: sequence, payload: chunk,
                                          discontinuity: first && pass > 0))
                first = false
                sequence += 1
            }
        }
    }
}

/// CPU time (user + system) of this process or of its waited-for children.
enum CPUTime {
    static func now() -> Double { usage(RUSAGE_SELF) }

    /// Sleeps `duration` and returns the wall and CPU seconds (this process) it took.
    static func measure(_ duration: Duration) async throws -> (wallSeconds: Double, cpuSeconds: Double) {
        let cpuBefore = now()
        let clock = ContinuousClock()
        let start = clock.now
        try await Task.sleep(for: duration)
        return ((clock.now - start).seconds, now() - cpuBefore)
    }
    static func children() -> Double { usage(RUSAGE_CHILDREN) }

    private static func usage(_ who: __rusage_who) -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(who.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }
}

/// `camflow bench mp4`: the MP4 path against ffprobe and GStreamer.
struct MP4BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mp4",
        abstract: "MB/s of mp4-parse + keyframes + stats on an in-memory 1440p fMP4, against ffprobe and GStreamer.",
        discussion: """
            The media is a 1440p H.264 + AAC fragmented MP4 at about 4 Mbit/s, made once with ffmpeg \
            (or --media). camflow replays it from memory, repeated to --megabytes, through \
            mp4-parse -> keyframes -> stats -> null, with and without frames: true. ffprobe \
            -show_packets and gst-launch-1.0 filesrc ! qtdemux ! fakesink (when installed) read the \
            same file from the page cache. 'MB/s per core' divides by CPU time, not wall time.
            """)

    @Option(help: "A fragmented MP4 to use instead of the generated one.")
    var media: String?

    @Option(help: "Megabytes pushed through camflow per run.")
    var megabytes: Int = 1000

    @Option(help: "Times each external tool reads the file.")
    var repeats: Int = 5

    func run() async throws {
        warnIfDebugBuild()
        let path = try MP4Benchmark.media(media)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let bench = MP4Benchmark(media: data, totalBytes: megabytes * 1_000_000)
        var results: [MP4Benchmark.Row] = []
        results.append(try await bench.camflow(frames: false))
        results.append(try await bench.camflow(frames: true))
        if let row = try bench.external("ffprobe -show_packets", ["ffprobe", "-v", "error", "-show_packets", path],
                                        repeats: repeats) { results.append(row) }
        else { printError("ffprobe not installed: skipped") }
        if let row = try bench.external("gst-launch-1.0 qtdemux", ["gst-launch-1.0", "-q", "filesrc", "location=\(path)", "!",
                                                                    "qtdemux", "!", "fakesink"], repeats: repeats) {
            results.append(row)
        } else { printError("gst-launch-1.0 not installed: skipped") }
        let ffprobe = results.first { $0.name.hasPrefix("ffprobe") }
        var rows = [["reader", "MB", "seconds", "MB/s", "MB/s per core", "fragments/s", "vs ffprobe"]]
        for row in results {
            let rate = Double(row.bytes) / 1e6 / row.wallSeconds
            let perCore = row.cpuSeconds.map { Double(row.bytes) / 1e6 / max($0, 1e-9) }
            let ratio = ffprobe.map { rate / (Double($0.bytes) / 1e6 / $0.wallSeconds) }
            rows.append([row.name, (Double(row.bytes) / 1e6).text(1), row.wallSeconds.text(3), rate.text(1),
                         perCore.map { $0.text(1) } ?? "-",
                         row.fragments > 0 ? (Double(row.fragments) / row.wallSeconds).text(0) : "-",
                         ratio.map { $0.text(1) + "x" } ?? "-"])
        }
        print("media: \(path), \(data.count) bytes")
        print(TextTable.render(rows))
    }
}
