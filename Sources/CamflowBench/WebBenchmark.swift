import ArgumentParser
import Camflow
import CamflowCLI
import Foundation
import InstarPlugin
import Logging
import MP4Plugin
import WebPlugin

/// `camflow bench web`: `instar-camera → mp4-parse → web` in this process,
/// N viewers in another (`camflow run` of N instar-camera nodes reading the
/// web sink's `/ws`), so this process's CPU is the restream's alone.
struct WebBenchmark {
    struct Result {
        var bytesIn: UInt64
        var bytesOut: UInt64
        var fragmentsOut: UInt64
        var dropped: UInt64
        var wallSeconds: Double
        var cpuSeconds: Double
        var peakResidentKiB: Int
    }

    let cameraURL: String
    /// Whether the web sink cuts LL-HLS too (every fragment parsed and cut into parts).
    var hls = true

    func run(viewers: Int, warmup: Duration, seconds: Duration, logger: Logger) async throws -> Result {
        let port = try Self.freePort()
        let registry = NodeRegistry(plugins: [InstarPlugin.self, MP4Plugin.self, WebPlugin.self])
        let graph = try GraphValidator(registry: registry).validate(PipelineSpec(name: "bench-web", nodes: [
            NodeSpec(id: "cam", type: "instar-camera", options: [
                "url": .scalar(cameraURL), "username": "admin", "password": "instar", "idle-timeout": "30s",
            ]),
            NodeSpec(id: "parse", type: "mp4-parse", inputs: ["cam"]),
            NodeSpec(id: "web", type: "web", inputs: ["parse"],
                     // Every viewer comes from 127.0.0.1: the per-client limit must admit them all, and /api/stats.
                     options: ["bind": .scalar("127.0.0.1:\(port)"), "hls": .scalar(hls ? "true" : "false"),
                               "max-connections-per-client": .scalar("\(viewers + 8)"),
                               "max-connections": .scalar("\(max(256, viewers + 8))")]),
        ]))
        let pipeline = Pipeline(graph: graph, logger: logger, metricsInterval: nil)
        return try await withThrowingTaskGroup(of: Result?.self) { group in
            group.addTask {
                try await pipeline.run()
                return nil
            }
            let stats = URL(string: "http://127.0.0.1:\(port)/api/stats")!
            let deadline = ContinuousClock.now + .seconds(30)
            while (try? await Self.viewerTotals(stats)) == nil {
                guard ContinuousClock.now < deadline else { throw BenchmarkError(message: "the web sink did not start") }
                try await Task.sleep(for: .milliseconds(50))
            }
            let viewerPipeline = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-bench-viewers-\(getpid()).yaml")
            var yaml = "name: bench-viewers\nnodes:\n"
            for index in 0..<viewers {
                yaml += "  v\(index): { type: instar-camera, url: \"ws://127.0.0.1:\(port)/ws\", idle-timeout: 30s }\n"
            }
            yaml += "  sink: { type: null, inputs: [\((0..<viewers).map { "v\($0)" }.joined(separator: ", "))] }\n"
            try yaml.write(to: viewerPipeline, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: viewerPipeline) }
            let viewerProcess = try ChildProcess(["run", viewerPipeline.path, "--status-interval", "0", "--log-level", "error", "--quiet"])
            defer { viewerProcess.process.terminate() }
            try await Task.sleep(for: warmup)

            func cameraBytes() -> UInt64 { pipeline.snapshot().node("cam")?.counters.bytesOut ?? 0 }
            let before = try await Self.viewerTotals(stats)
            let bytesInBefore = cameraBytes()
            let (wall, cpu) = try await CPUTime.measure(seconds)
            let after = try await Self.viewerTotals(stats)
            let bytesIn = cameraBytes() - bytesInBefore
            viewerProcess.process.terminate()
            pipeline.requestStop()
            while try await group.next() != nil {}
            guard after.viewers == viewers else {
                throw BenchmarkError(message: "\(after.viewers) of \(viewers) viewers connected")
            }
            return Result(bytesIn: bytesIn, bytesOut: after.bytes - before.bytes, fragmentsOut: after.fragments - before.fragments,
                          dropped: after.dropped - before.dropped, wallSeconds: wall, cpuSeconds: cpu,
                          peakResidentKiB: ResourceUsage.peakResidentKiB())
        }
    }

    /// Viewers connected now and what they were sent and lost, from /api/stats.
    static func viewerTotals(_ url: URL) async throws -> (viewers: Int, bytes: UInt64, fragments: UInt64, dropped: UInt64) {
        let data = try httpGet(url)
        guard let json = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let viewers = json["viewers"] as? [[String: Any]] else { throw BenchmarkError(message: "bad /api/stats") }
        func sum(_ key: String) -> UInt64 { viewers.reduce(0) { $0 + UInt64(($1[key] as? Int) ?? 0) } }
        return (viewers.count, sum("sentBytes"), sum("sentFragments"), sum("droppedFragments"))
    }

    /// The body of a plain HTTP/1.0 GET to 127.0.0.1, over a socket: enough
    /// for /api/stats, and no URLSession (FoundationNetworking would make
    /// every camflow command load libcurl and its ~30 libraries).
    static func httpGet(_ url: URL) throws -> Data {
        guard let port = url.port else { throw BenchmarkError(message: "no port in \(url)") }
        guard let fd = Loopback.connect(port: port) else { throw BenchmarkError(message: "cannot connect to \(url)") }
        defer { close(fd) }
        // Said outright: a server may keep an HTTP/1.0 connection open until its idle timeout.
        let request = Array("GET \(url.path) HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ OutputStream.writeAll(fd, $0) }) == nil else {
            throw BenchmarkError(message: "cannot send to \(url)")
        }
        var response = Data()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            response.append(contentsOf: chunk[..<count])
            // Done once the head and as many bytes as it announced are in.
            if let end = response.range(of: Data("\r\n\r\n".utf8)),
               let head = String(data: response[..<end.lowerBound], encoding: .utf8),
               let line = head.split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("content-length:") }),
               let length = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)),
               response.count - end.upperBound >= length {
                break
            }
        }
        guard let end = response.range(of: Data("\r\n\r\n".utf8)) else { throw BenchmarkError(message: "no HTTP response from \(url)") }
        return response[end.upperBound...]
    }

    /// A port nothing listens on now (the kernel's pick for port 0).
    static func freePort() throws -> Int {
        guard let port = Loopback.freePort() else { throw BenchmarkError(message: "cannot find a free port") }
        return port
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

    @Option(help: "LL-HLS in the web sink: on, off, or both (each count run without and with it, in turn).")
    var hls = "on"

    @OptionGroup var live: LiveBenchOptions

    private var counts: [Int] { LiveBenchOptions.counts(viewers) }

    func validate() throws {
        try live.validate(counts, option: "--viewers")
        guard ["on", "off", "both"].contains(hls) else { throw ValidationError("--hls: on, off or both, not '\(hls)'") }
    }

    func run() async throws {
        warnIfDebugBuild()
        let (simulator, urls, _) = try await ChildProcess.simulator(media: try BenchTools.clip(live.media), cameras: 1)
        defer { withExtendedLifetime(simulator) {} }
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        var rows = [["viewers", "HLS", "Mbit/s in", "Mbit/s out", "CPU % total", "CPU s/GB out", "fragments out", "dropped", "peak RSS"]]
        let modes = hls == "both" ? [false, true] : [hls == "on"]
        for count in counts {
            for withHLS in modes {
                let result = try await WebBenchmark(cameraURL: urls[0], hls: withHLS).run(
                    viewers: count, warmup: .seconds(live.warmup), seconds: .seconds(live.seconds), logger: logger)
                let gigabytesOut = Double(result.bytesOut) / 1e9
                rows.append([
                    "\(count)", withHLS ? "on" : "off", (Double(result.bytesIn) * 8 / 1e6 / result.wallSeconds).text(1),
                    (Double(result.bytesOut) * 8 / 1e6 / result.wallSeconds).text(1),
                    (result.cpuSeconds / result.wallSeconds * 100).text(1),
                    gigabytesOut > 0 ? (result.cpuSeconds / gigabytesOut).text(2) : "-",
                    "\(result.fragmentsOut)", "\(result.dropped)", "\(result.peakResidentKiB / 1024) MiB",
                ])
                printError("done: \(count) viewers, HLS \(withHLS ? "on" : "off")")
            }
        }
        print(TextTable.render(rows))
    }
}

/// What the benchmarks against a live simulated camera share.
