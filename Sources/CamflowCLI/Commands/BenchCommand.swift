import ArgumentParser
import Camflow
import Foundation
import Logging
import ZeroMQPlugin

/// `camflow bench ...`: benchmarks printed as tables. Build with `-c release`.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run a benchmark and print a table (build with -c release for real numbers).",
        subcommands: [EngineBenchCommand.self, MP4BenchCommand.self, IngestBenchCommand.self, ZMQBenchCommand.self,
                      RecordBenchCommand.self, WebBenchCommand.self])
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
        let path = try MP4Benchmark.media(live.media)
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

/// `camflow bench zmq`: zmq-publish against bare libzmq.
struct ZMQBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zmq",
        abstract: "zmq-publish against a bare libzmq PUB loop: messages/s, MB/s, and latency at 100 cameras' rate.",
        discussion: """
            Both publish three-frame messages over tcp://127.0.0.1 to a SUB socket on a thread of its \
            own; rates count what the subscriber received, from its first message to its last. The \
            latency rows pace 2,500 frames/s of 20 KB (100 cameras at 25 fps, 4 Mbit/s each) and \
            measure from packet creation to receipt; the throughput rows do not measure latency. \
            Both send the same bytes: the bare loop's header is a timestamp padded to the length \
            of camflow's JSON header, so the ratio is the cost of the pipeline and of building headers.
            """)

    @Option(help: "Scale the message counts (1 = 200k/100k/10k for 64 B/10 KiB/200 KiB).")
    var scale = 1.0

    func run() async throws {
        warnIfDebugBuild()
        var rows = [["path", "payload", "messages", "received", "msg/s", "MB/s", "vs bare", "p50 µs", "p99 µs"]]
        func row(_ name: String, _ size: Int, _ result: ZMQBenchmark.Result, bare: ZMQBenchmark.Result?) -> [String] {
            let rate = Double(result.received) / max(result.seconds, 1e-9)
            let bareRate = bare.map { Double($0.received) / max($0.seconds, 1e-9) }
            return [name, size >= 1024 ? "\(size / 1024) KiB" : "\(size) B", "\(result.sent)", "\(result.received)",
                    rate.grouped, (rate * Double(size + 40) / 1e6).text(1), bareRate.map { (rate / $0).text(2) } ?? "-",
                    result.latenciesMicroseconds.percentile(50).map { $0.text(0) } ?? "-",
                    result.latenciesMicroseconds.percentile(99).map { $0.text(0) } ?? "-"]
        }
        for (size, count) in [(64, 200_000), (10 * 1024, 100_000), (200 * 1024, 10_000)] {
            let messages = max(100, Int(Double(count) * scale))
            let bare = try await ZMQBenchmark.bare(count: messages, size: size, rate: nil)
            let node = try await ZMQBenchmark.node(count: messages, size: size, rate: nil)
            rows.append(row("bare libzmq", size, bare, bare: nil))
            rows.append(row("zmq-publish", size, node, bare: bare))
            printError("done: \(size) B")
        }
        let paced = max(100, Int(10_000 * scale))
        let bare = try await ZMQBenchmark.bare(count: paced, size: 20_000, rate: 2_500)
        let node = try await ZMQBenchmark.node(count: paced, size: 20_000, rate: 2_500)
        rows.append(row("bare, 100 cameras", 20_000, bare, bare: nil))
        rows.append(row("zmq-publish, 100 cameras", 20_000, node, bare: bare))
        print("libzmq \(ZMQContext.version)")
        print(TextTable.render(rows))
    }
}

/// `camflow bench record`: recording throughput against cp.
struct RecordBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Write MB/s of file-replay -> mp4-parse -> file-record against cp of the same bytes.",
        discussion: """
            Makes a fragmented MP4 of --megabytes by looping the 1440p bench clip with continuous \
            timestamps, then copies it with cp and records it with fsync on-close and every-fragment, \
            in --directory (default: the temporary directory), all in one run.
            """)

    @Option(help: "Size of the input in megabytes.")
    var megabytes = 300

    @Option(help: "Where to write (the file system under test).")
    var directory: String?

    @Option(help: "A fragmented MP4 to loop instead of the generated clip.")
    var media: String?

    func run() async throws {
        warnIfDebugBuild()
        let source = try MP4Benchmark.media(media)
        let directory = self.directory ?? FileManager.default.temporaryDirectory.appendingPathComponent("camflow-bench-record").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let input = directory + "/input.mp4"
        let bytes = try RecordBenchmark.makeInput(from: try Data(contentsOf: URL(fileURLWithPath: source)),
                                                  megabytes: megabytes, at: input)
        defer { try? FileManager.default.removeItem(atPath: input) }
        printError("input: \(bytes) bytes")
        let copy = try RecordBenchmark.copy(input, to: directory)
        let onClose = try await RecordBenchmark.record(input, to: directory, fsync: "on-close")
        let everyFragment = try await RecordBenchmark.record(input, to: directory, fsync: "every-fragment")
        var rows = [["writer", "MB", "seconds", "MB/s", "vs cp"]]
        let cpRate = Double(copy.bytes) / 1e6 / copy.seconds
        for row in [copy, onClose, everyFragment] {
            let rate = Double(row.bytes) / 1e6 / row.seconds
            rows.append([row.name, (Double(row.bytes) / 1e6).text(1), row.seconds.text(3), rate.text(1), (rate / cpRate).text(2)])
        }
        print("directory: \(directory)")
        print(TextTable.render(rows))
    }
}

/// Benchmarks of a debug build measure the debug build.
func warnIfDebugBuild() {
    #if DEBUG
    printError("note: this is a debug build; build with 'swift build -c release' for real numbers")
    #endif
}

extension Double {
    fileprivate func text(_ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let value = (self * scale).rounded() / scale
        var s = String(value)
        if let dot = s.firstIndex(of: ".") {
            let decimals = s.distance(from: dot, to: s.endIndex) - 1
            if decimals < digits { s += String(repeating: "0", count: digits - decimals) }
        }
        return s
    }

    fileprivate var grouped: String {
        let digits = String(Int64(self.rounded()))
        var out = ""
        for (i, c) in digits.reversed().enumerated() {
            if i > 0 && i % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return String(out.reversed())
    }
}

/// `camflow bench web`: one camera restreamed by the `web` sink to N viewers.
struct WebBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "web",
        abstract: "One simulated camera -> mp4-parse -> web, restreamed to N camera-protocol viewers.",
        discussion: """
            The simulator and the viewers (a 'camflow run' of N instar-camera nodes pointed at the \
            web sink's /ws) run in processes of their own, so CPU is this process's alone: the \
            pipeline, the web server and its per-viewer queues. Bytes out and drops come from \
            /api/stats over the measured window.
            """)

    @Option(help: "Viewer counts, comma-separated.")
    var viewers = "1,10,100"

    @OptionGroup var live: LiveBenchOptions

    private var counts: [Int] { LiveBenchOptions.counts(viewers) }

    func validate() throws { try live.validate(counts, option: "--viewers") }

    func run() async throws {
        warnIfDebugBuild()
        let (simulator, urls, _) = try await ChildProcess.simulator(media: try MP4Benchmark.media(live.media), cameras: 1)
        defer { withExtendedLifetime(simulator) {} }
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        var rows = [["viewers", "Mbit/s in", "Mbit/s out", "CPU % total", "CPU s/GB out", "fragments out", "dropped", "peak RSS"]]
        for count in counts {
            let result = try await WebBenchmark(cameraURL: urls[0]).run(
                viewers: count, warmup: .seconds(live.warmup), seconds: .seconds(live.seconds), logger: logger)
            let gigabytesOut = Double(result.bytesOut) / 1e9
            rows.append([
                "\(count)", (Double(result.bytesIn) * 8 / 1e6 / result.wallSeconds).text(1),
                (Double(result.bytesOut) * 8 / 1e6 / result.wallSeconds).text(1),
                (result.cpuSeconds / result.wallSeconds * 100).text(1),
                gigabytesOut > 0 ? (result.cpuSeconds / gigabytesOut).text(2) : "-",
                "\(result.fragmentsOut)", "\(result.dropped)", "\(result.peakResidentKiB / 1024) MiB",
            ])
            printError("done: \(count) viewers")
        }
        print(TextTable.render(rows))
    }
}

/// What the benchmarks against a live simulated camera share.
struct LiveBenchOptions: ParsableArguments {
    @Option(help: "Measured seconds per count.")
    var seconds = 10

    @Option(help: "Seconds to connect and settle before measuring.")
    var warmup = 3

    @Option(help: "A fragmented MP4 for the cameras; default: the generated 1440p clip.")
    var media: String?

    /// `1,10,100` as numbers; anything else is left out.
    static func counts(_ list: String) -> [Int] {
        list.split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 }
    }

    func validate(_ counts: [Int], option: String) throws {
        guard !counts.isEmpty else { throw ValidationError("\(option): expected numbers such as 1,10,100") }
        guard seconds > 0, warmup >= 0 else { throw ValidationError("--seconds must be positive") }
    }
}
