import ArgumentParser
import Camflow
import CamflowCLI
import Foundation

/// `camflow bench mp4`: the MP4 parse path as a user runs it, whole
/// processes side by side on the same file: `camflow run` against GStreamer
/// (`qtdemux ! h264parse ! fakesink`) and `ffprobe -show_packets`.
struct MP4Benchmark {
    /// One way to read the file, as a command line.
    struct Reader {
        var name: String
        var arguments: [String]
    }

    let path: String
    let runs: Int

    /// camflow's pipeline: parse every sample into a frame packet and mark keyframes.
    func camflowReader() throws -> Reader {
        let pipeline = FileManager.default.temporaryDirectory
            .appendingPathComponent("camflow-bench-mp4-\(getpid()).yaml").path
        let escaped = path.replacingOccurrences(of: "'", with: "''")
        try """
            name: bench-mp4
            nodes:
              file: { type: file-replay, path: '\(escaped)' }
              parse: { type: mp4-parse, inputs: [file], frames: true }
              keyframes: { type: keyframes, inputs: [parse] }
              sink: { type: "null", inputs: [keyframes] }
            """.write(toFile: pipeline, atomically: true, encoding: .utf8)
        return Reader(name: "camflow run: file-replay > mp4-parse (frames) > keyframes > null",
                      arguments: [URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path,
                                  "run", pipeline, "--log-level", "error", "--quiet"])
    }

    var gstreamer: Reader {
        Reader(name: "gst-launch-1.0 filesrc ! qtdemux ! h264parse ! fakesink",
               arguments: ["gst-launch-1.0", "-q", "filesrc", "location=\(path)", "!", "qtdemux", "!",
                           "video/x-h264", "!", "h264parse", "!", "fakesink"])
    }

    var ffprobe: Reader {
        Reader(name: "ffprobe -show_packets", arguments: ["ffprobe", "-v", "error", "-show_packets", path])
    }

    /// Runs every reader `runs` times, alternating (camflow, GStreamer,
    /// ffprobe, camflow, ...), after one warm-up round that loads the page
    /// cache; returns each reader's runs.
    func measure(_ readers: [Reader]) throws -> [(Reader, [ProcessMeasurement])] {
        for reader in readers { _ = try ProcessMeasurement.run(reader.arguments) }
        var results = readers.map { ($0, [ProcessMeasurement]()) }
        for round in 0..<runs {
            for index in results.indices {
                results[index].1.append(try ProcessMeasurement.run(results[index].0.arguments))
            }
            printError("done: round \(round + 1) of \(runs)")
        }
        return results
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}

/// `camflow bench mp4`: the MP4 path against GStreamer and ffprobe.
struct MP4BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mp4",
        abstract: "camflow's MP4 parse path against GStreamer and ffprobe: whole processes on the same file.",
        discussion: """
            The media is a 600 s, 1440p H.264 + AAC fragmented MP4 of about 317 MB, made once with \
            ffmpeg (or --media). Each reader is a separate process started by this command, start-up \
            included: 'camflow run' of file-replay -> mp4-parse (frames: true) -> keyframes -> null, \
            'gst-launch-1.0 filesrc ! qtdemux ! h264parse ! fakesink' and 'ffprobe -show_packets'. \
            After a warm-up round (page cache), the readers run in turn, --runs times each; the table \
            shows the median wall time, the median CPU time (user + system) and the largest peak \
            resident memory, each as GNU time (Debian: time) reports it for that child alone.
            """)

    @Option(help: "A fragmented MP4 to use instead of the generated one.")
    var media: String?

    @Option(help: "Runs of each reader (after one warm-up round).")
    var runs: Int = 5

    func validate() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
    }

    func run() async throws {
        warnIfDebugBuild()
        let path = try media ?? BenchTools.longFile()
        let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        let bench = MP4Benchmark(path: path, runs: runs)
        var readers = [try bench.camflowReader()]
        for reader in [bench.gstreamer, bench.ffprobe] {
            if BenchTools.which(reader.arguments[0]) != nil {
                readers.append(reader)
            } else {
                printError("\(reader.arguments[0]) not installed: skipped (Debian: gstreamer1.0-tools, "
                           + "gstreamer1.0-plugins-good, gstreamer1.0-plugins-bad; ffmpeg)")
            }
        }
        let results = try bench.measure(readers)
        let gstWall = results.first { $0.0.arguments[0] == "gst-launch-1.0" }.map { MP4Benchmark.median($0.1.map(\.wallSeconds)) }
        var rows = [["reader", "wall (median)", "CPU (median)", "peak RSS", "MB/s", "wall vs GStreamer"]]
        for (reader, measurements) in results {
            let wall = MP4Benchmark.median(measurements.map(\.wallSeconds))
            let cpu = MP4Benchmark.median(measurements.map(\.cpuSeconds))
            let rss = measurements.map(\.peakResidentKiB).max() ?? 0
            rows.append([reader.name, wall.text(3) + " s", cpu.text(3) + " s", "\(rss / 1024) MiB",
                         (Double(size) / 1e6 / wall).text(0), gstWall.map { (wall / $0).text(2) + "x" } ?? "-"])
        }
        print("media: \(path), \(size) bytes; \(runs) runs each, alternated, after a warm-up round")
        print(TextTable.render(rows))
    }
}
