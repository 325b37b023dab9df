import ArgumentParser
import Camflow
import CamflowCLI
import Foundation
import InstarSimulator
import NIOCore
import NIOPosix
import RTSPProtocol
#if canImport(Glibc)
import Glibc
#endif

/// `camflow bench rtsp`: one live stream served to N RTSP/TCP clients by
/// camflow (`file-replay → mp4-parse → rtsp` in a `camflow run` of its own)
/// and by GStreamer's RTSP server, the server process's CPU and memory per
/// client side by side. The clients live in this process, so the server's
/// CPU is its own.
struct RTSPBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rtsp",
        abstract: "One 1440p stream to N RTSP/TCP clients: camflow's rtsp node against GStreamer's RTSP server.",
        discussion: """
            For each client count and server, a fresh server process streams the clip (looped, at \
            its media rate): camflow as 'camflow run' of file-replay (realtime, loop) -> mp4-parse \
            -> rtsp, GStreamer as --gst-server (Tests/Peers/gst_rtsp_server.py, gst-rtsp-server \
            through Python's GObject bindings; skipped with a line saying why when it cannot run). \
            The clients are NIO connections in this process (OPTIONS, DESCRIBE, SETUP of each \
            track interleaved, PLAY, then bytes counted). Over the measured window: the server's \
            CPU (utime + stime from /proc/PID/stat), its resident memory at the end, the bytes \
            each client received; a client that got less than 90% of the media's bit rate is \
            starved. 'bench CPU %' is this process's, the clients' (one event-loop thread: near \
            100% the clients, not the server, are the limit). The goal: camflow at most half of \
            GStreamer's CPU per client.
            """)

    @Option(help: "Client counts, comma-separated.")
    var clients = "1,10,100,200"

    @Option(help: "Servers to measure, comma-separated: camflow, gstreamer.")
    var servers = "camflow,gstreamer"

    @Option(help: "GStreamer's RTSP server script (run with /usr/bin/python3).")
    var gstServer = "Tests/Peers/gst_rtsp_server.py"

    @OptionGroup var live: LiveBenchOptions

    private var counts: [Int] { LiveBenchOptions.counts(clients) }
    private var kinds: [RTSPBenchServer] { servers.split(separator: ",").compactMap { RTSPBenchServer(rawValue: String($0)) } }

    func validate() throws {
        try live.validate(counts, option: "--clients")
        let names = servers.split(separator: ",").map(String.init)
        guard !names.isEmpty, names.allSatisfy({ RTSPBenchServer(rawValue: $0) != nil }) else {
            throw ValidationError("--servers: camflow and/or gstreamer, not '\(servers)'")
        }
    }

    func run() async throws {
        warnIfDebugBuild()
        let media = try live.media ?? RTSPBenchmark.liveClip()
        let expected = try RTSPBenchmark.mediaBytesPerSecond(media)
        print("media: \(media), \((expected * 8 / 1e6).text(2)) Mbit/s; starved: under 90% of it")
        var kinds = self.kinds
        if kinds.contains(.gstreamer), let reason = RTSPServerProcess.gstreamerMissing(script: gstServer) {
            print("gstreamer: skipped: \(reason)")
            kinds.removeAll { $0 == .gstreamer }
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var rows = [["clients", "server", "CPU %", "CPU %/client", "RSS MiB", "MiB/s/client", "min MiB/s", "starved", "bench CPU %"]]
        var perClient: [Int: [RTSPBenchServer: Double]] = [:]
        do {
            for count in counts {
                for kind in kinds {
                    let benchmark = RTSPBenchmark(server: kind, media: media, gstServer: gstServer, expectedBytesPerSecond: expected, group: group)
                    let result = try await benchmark.run(clients: count, warmup: .seconds(live.warmup), seconds: .seconds(live.seconds))
                    let cpu = result.cpuSeconds / result.wallSeconds * 100
                    perClient[count, default: [:]][kind] = cpu / Double(count)
                    rows.append(["\(count)", kind.rawValue, cpu.text(1), (cpu / Double(count)).text(2), result.residentMiB.text(1),
                                 (result.meanBytesPerSecond / 1_048_576).text(3), (result.minBytesPerSecond / 1_048_576).text(3),
                                 "\(result.starved)", (result.benchCPUSeconds / result.wallSeconds * 100).text(1)])
                    printError("done: \(count) clients, \(kind.rawValue)" + (result.failure.map { "; a client: \($0)" } ?? ""))
                    if result.meanBytesPerSecond == 0 {
                        print("\(kind.rawValue), \(count) clients: no client received a byte in the window (server CPU \(result.cpuSeconds.text(2)) s): the server stalled")
                    }
                }
            }
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try? await group.shutdownGracefully()
        print(TextTable.render(rows))
        for count in counts {
            guard let ours = perClient[count]?[.camflow], let theirs = perClient[count]?[.gstreamer], theirs > 0 else { continue }
            let ratio = ours / theirs
            print("\(count) clients: camflow's CPU per client is \(ratio.text(2)) of GStreamer's (goal: at most 0.50)\(ratio <= 0.5 ? "" : " MISSED")")
        }
    }
}

/// The servers `camflow bench rtsp` compares.
enum RTSPBenchServer: String, Sendable {
    case camflow, gstreamer
}

/// One step of `camflow bench rtsp`: a fresh server, N clients, one window.
struct RTSPBenchmark {
    struct Result {
        var wallSeconds: Double
        var cpuSeconds: Double
        /// This process's CPU over the window: the clients' (a saturated client thread starves them, not the server).
        var benchCPUSeconds: Double
        var residentMiB: Double
        var meanBytesPerSecond: Double
        var minBytesPerSecond: Double
        var starved: Int
        /// What the first client that failed said.
        var failure: String?
    }

    let server: RTSPBenchServer
    let media: String
    let gstServer: String
    let expectedBytesPerSecond: Double
    let group: MultiThreadedEventLoopGroup

    /// The 1440p clip cut into fragments of at most 200 ms, as a live camera
    /// sends them, made on first use. With the clip's own 2 s fragments
    /// (one per GOP), camflow sends in 1 MB bursts and a client's bytes over
    /// a 10 s window swing by a fifth with where the window falls; GStreamer
    /// paces packets by their times whatever the file's fragments.
    static func liveClip() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-bench-1440p-200ms.mp4").path
        if !FileManager.default.fileExists(atPath: path) {
            let clip = try BenchTools.clip(nil)
            printError("making \(path) with ffmpeg (once)...")
            do {
                _ = try ProcessMeasurement.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", clip, "-c", "copy",
                                                "-movflags", "frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "200000",
                                                "-f", "mp4", path])
            } catch {
                try? FileManager.default.removeItem(atPath: path)
                throw BenchmarkError(message: "ffmpeg could not make \(path): \(error)")
            }
        }
        return path
    }

    /// The media's bytes per second of play (its fragments over one pass): what a client must receive.
    static func mediaBytesPerSecond(_ path: String) throws -> Double {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let media = try SimulatedMedia(file: ByteBuffer(bytes: data))
        return Double(media.fragments.reduce(0) { $0 + $1.bytes.readableBytes }) / media.loopSeconds
    }

    func run(clients count: Int, warmup: Duration, seconds: Duration) async throws -> Result {
        let process = try RTSPServerProcess(server, media: media, gstServer: gstServer, clients: count)
        defer { process.stop() }
        let url = try await process.waitForURL()
        guard let port = URL(string: url)?.port else { throw BenchmarkError(message: "no port in \(url)") }
        // The first client to play stays as one of the N: a probe that left may let GStreamer
        // unprepare its shared media just as the others join (with such a probe, once in four
        // runs of 200 clients it sent nothing at all).
        var clients = [try await firstClient(url: url, port: port, process: process)]
        defer { for client in clients { client.channel.close(promise: nil) } }
        for _ in 1..<count {
            let stats = RTSPBenchClientStats()
            clients.append((try await RTSPBenchClient.connect(url: url, port: port, stats: stats, group: group), stats))
        }
        let deadline = ContinuousClock.now + .seconds(30)
        while !clients.allSatisfy({ $0.stats.isPlaying || $0.stats.failure != nil }), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        try await Task.sleep(for: warmup)
        let clock = ContinuousClock()
        let before = clients.map(\.stats.bytes)
        guard let cpuBefore = ProcStat.cpuSeconds(pid: process.pid) else { throw BenchmarkError(message: "\(server.rawValue) exited") }
        let start = clock.now
        let benchBefore = CPUTime.now()
        try await Task.sleep(for: seconds)
        let benchCPU = CPUTime.now() - benchBefore
        guard let cpuAfter = ProcStat.cpuSeconds(pid: process.pid) else { throw BenchmarkError(message: "\(server.rawValue) exited") }
        let wall = (clock.now - start).seconds
        let rates = zip(clients, before).map { client, bytes in Double(client.stats.bytes - bytes) / wall }
        let starved = zip(clients, rates).filter { !$0.0.stats.isPlaying || $0.1 < 0.9 * expectedBytesPerSecond }.count
        return Result(wallSeconds: wall, cpuSeconds: cpuAfter - cpuBefore, benchCPUSeconds: benchCPU, residentMiB: ProcStat.residentMiB(pid: process.pid) ?? 0,
                      meanBytesPerSecond: rates.reduce(0, +) / Double(max(1, rates.count)), minBytesPerSecond: rates.min() ?? 0,
                      starved: starved, failure: clients.lazy.compactMap(\.stats.failure).first)
    }

    /// Connects clients until one plays (the server listens and has the stream), up to a minute.
    private func firstClient(url: String, port: Int, process: RTSPServerProcess) async throws
        -> (channel: any Channel, stats: RTSPBenchClientStats)
    {
        let deadline = ContinuousClock.now + .seconds(60)
        var last = "no answer"
        while ContinuousClock.now < deadline {
            guard process.isRunning else { throw BenchmarkError(message: "\(server.rawValue) exited: \(process.errorTail)") }
            let stats = RTSPBenchClientStats()
            if let channel = try? await RTSPBenchClient.connect(url: url, port: port, stats: stats, group: group) {
                let wait = ContinuousClock.now + .seconds(5)
                while !stats.isPlaying, stats.failure == nil, !stats.hasEnded, ContinuousClock.now < wait {
                    try await Task.sleep(for: .milliseconds(20))
                }
                if stats.isPlaying { return (channel, stats) }
                try? await channel.close()
                last = stats.failure ?? "no PLAY answer"
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw BenchmarkError(message: "\(server.rawValue) at \(url) did not play within 60 s: \(last); \(process.errorTail)")
    }
}

/// A server under test in a process of its own, its output in files.
final class RTSPServerProcess {
    private let process = Process()
    private let output: URL
    private let errors: URL
    private let pipeline: URL?
    private let fixedURL: String?

    init(_ server: RTSPBenchServer, media: String, gstServer: String, clients: Int) throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-bench-rtsp-\(getpid())-\(UUID().uuidString)")
        output = base.appendingPathExtension("out")
        errors = base.appendingPathExtension("err")
        for file in [output, errors] { _ = FileManager.default.createFile(atPath: file.path, contents: nil) }
        switch server {
        case .camflow:
            let port = try WebBenchmark.freePort()
            let quoted = "\"" + media.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
            let yaml = """
                name: bench-rtsp
                nodes:
                  replay: { type: file-replay, path: \(quoted), loop: true, realtime: true, stream: stream }
                  parse: { type: mp4-parse, inputs: [replay] }
                  rtsp: { type: rtsp, inputs: [parse], bind: "127.0.0.1:\(port)", max-connections: \(clients + 16), max-connections-per-client: \(clients + 16) }

                """
            let file = base.appendingPathExtension("yaml")
            try yaml.write(to: file, atomically: true, encoding: .utf8)
            pipeline = file
            fixedURL = "rtsp://127.0.0.1:\(port)/stream"
            process.executableURL = URL(fileURLWithPath: "/proc/self/exe")
            process.arguments = ["run", file.path, "--status-interval", "0", "--log-level", "error", "--quiet"]
        case .gstreamer:
            pipeline = nil
            fixedURL = nil
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = [gstServer, "--port", "0", "--file", media, "--loop"]
        }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: output)
        process.standardError = try FileHandle(forWritingTo: errors)
        try process.run()
    }

    deinit {
        stop()
        for file in [output, errors] + (pipeline.map { [$0] } ?? []) { try? FileManager.default.removeItem(at: file) }
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    /// The last lines the server wrote to stderr, for an error.
    var errorTail: String {
        let text = (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(3).joined(separator: " | ")
    }

    /// camflow's URL (its port was chosen here), or the one GStreamer's script prints once it listens.
    func waitForURL() async throws -> String {
        if let fixedURL { return fixedURL }
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline, process.isRunning {
            let lines = ((try? String(contentsOf: output, encoding: .utf8)) ?? "").split(separator: "\n")
            if let line = lines.first(where: { $0.hasPrefix("ready ") }) { return String(line.dropFirst(6)) }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw BenchmarkError(message: "the GStreamer server did not start: \(errorTail)")
    }

    /// SIGTERM, then SIGKILL if it still runs after a few seconds.
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = ContinuousClock.now + .seconds(5)
        while process.isRunning, ContinuousClock.now < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// Why GStreamer's server cannot run here, or nil when it can.
    static func gstreamerMissing(script: String) -> String? {
        guard FileManager.default.fileExists(atPath: script) else { return "\(script) not found (run from the repository, or pass --gst-server PATH)" }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else { return "/usr/bin/python3 not found" }
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        check.arguments = ["-c", "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"]
        check.standardOutput = FileHandle.nullDevice
        check.standardError = FileHandle.nullDevice
        guard (try? check.run()) != nil else { return "cannot run /usr/bin/python3" }
        check.waitUntilExit()
        return check.terminationStatus == 0 ? nil : "GStreamer's RTSP server bindings are missing (apt-get install -y python3-gi gir1.2-gst-rtsp-server-1.0)"
    }
}

/// A process's CPU time and memory as the kernel counts them, from /proc.
enum ProcStat {
    /// utime + stime of every thread of `pid`, in seconds; nil once it is gone.
    static func cpuSeconds(pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // After the command's closing parenthesis: field 3 (state) first, so utime (14) and stime (15) are 11 and 12.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Resident memory (VmRSS) of `pid` in MiB.
    static func residentMiB(pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kib = Double(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
        return kib / 1024
    }
}
