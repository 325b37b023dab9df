import ArgumentParser
import Camflow
import Foundation

/// `camflow bench ...`: benchmarks printed as tables. Build with `-c release`.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run a benchmark and print a table (build with -c release for real numbers).",
        subcommands: [EngineBenchCommand.self, MP4BenchCommand.self])
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
        #if DEBUG
        printError("note: this is a debug build; build with 'swift build -c release' for real numbers")
        #endif
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
        #if DEBUG
        printError("note: this is a debug build; build with 'swift build -c release' for real numbers")
        #endif
        let path = media ?? FileManager.default.temporaryDirectory.appendingPathComponent("camflow-bench-1440p.mp4").path
        if media == nil, !FileManager.default.fileExists(atPath: path) {
            printError("making \(path) with ffmpeg (once)...")
            try MP4Benchmark.generateMedia(at: path, seconds: 20)
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let bench = MP4Benchmark(media: data, mediaPath: path, totalBytes: megabytes * 1_000_000)
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
