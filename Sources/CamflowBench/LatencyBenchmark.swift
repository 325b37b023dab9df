import ArgumentParser
import Camflow
import CamflowCLI
import Foundation
import InstarSimulator
import NIOCore

/// `camflow bench latency`: glass-to-glass latency of each way of watching.
/// A simulated camera sends a 720p 25 fps H.264 stream one fragment per
/// frame (as a low-latency camera does), camflow (`camflow run`:
/// instar-camera → mp4-parse → web) restreams it, and headless Chromium
/// (Tests/Peers/latency_viewer.py) watches by WebRTC, MSE and LL-HLS; every
/// presented frame is mapped back to the moment the simulator sent it, on
/// the same monotonic clock.
struct LatencyBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latency",
        abstract: "Glass-to-glass latency: simulated camera -> camflow -> headless Chromium by WebRTC, MSE and LL-HLS.",
        discussion: """
            The camera ('camflow sim') serves a 720p 25 fps H.264 clip without B-frames, one \
            fragment per frame, made once with ffmpeg; a strip in its top 16 rows carries the frame \
            number. camflow runs 'instar-camera -> mp4-parse -> web' in a process of its own on free \
            ports. Chromium (--viewer-script, run with /usr/bin/python3) opens one window per way: \
            WebRTC in camflow's viewer page, its WHEP mode (the answer's a=x-camflow-media-clock maps \
            requestVideoFrameCallback's rtpTimestamp to the camera's media time), MSE in the viewer \
            page and LL-HLS in its HLS mode (their media times start at 0 for each viewer, so the frame \
            number read from the picture about once a second maps them). A frame's latency runs \
            from the simulator's send (its fragment ends: origin + (frame + 1) x 40 ms) to its \
            expected display time. The ways are watched one after the other (three 720p decodes \
            at once saturate a small machine), or at the same time with --together (a long run \
            of two ways). Frames of the first --warmup seconds are left out.
            """)

    @Option(help: "Seconds each way is measured.")
    var duration: Double = 20

    @Option(help: "Ways of watching, comma-separated: webrtc, mse, ll-hls.")
    var ways = "webrtc,mse,ll-hls"

    @Flag(help: "Watch the chosen ways at the same time (a window each in one browser) instead of one after the other.")
    var together = false

    @Option(help: "Seconds after a way's first frame that are not measured (joining, catching up).")
    var warmup: Double = 3

    @Option(help: "The Chromium driver (run with /usr/bin/python3).")
    var viewerScript = "Tests/Peers/latency_viewer.py"

    @Option(help: "The web sink's hls-part (longest LL-HLS part), e.g. 200ms; default: the node's.")
    var hlsPart: String?

    @Option(help: "Viewer counts at which camflow's own share (camera message in -> viewer's socket) is measured afterwards, for the chosen mse and webrtc ways; 'none' skips it.")
    var share = "1,10,50"

    @Option(help: "WebRTC in camflow's viewer page (its WHEP mode; an error if it falls back to MSE) or 'own', a bare page of the driver's.")
    var webrtcPage = "viewer"

    @Option(help: "Experiment: seconds the viewer's MSE player keeps behind the newest data (its CamflowPlayer.SLACK_TARGET); default: the page's.")
    var mseSlackTarget: Double?

    @Option(help: "Also write what the browser recorded (the driver's JSON lines, every frame) to this file.")
    var save: String?

    static let allWays = ["webrtc", "mse", "ll-hls"]
    private var chosen: [String] { ways.split(separator: ",").map(String.init) }

    func validate() throws {
        guard !chosen.isEmpty, chosen.allSatisfy(Self.allWays.contains), Set(chosen).count == chosen.count else {
            throw ValidationError("--ways: some of webrtc, mse, ll-hls, comma-separated, not '\(ways)'")
        }
        guard share == "none" || !LiveBenchOptions.counts(share).isEmpty else {
            throw ValidationError("--share: viewer counts such as 1,10,50, or none")
        }
        guard ["viewer", "own"].contains(webrtcPage) else { throw ValidationError("--webrtc-page: viewer or own, not '\(webrtcPage)'") }
        guard duration > 0, warmup >= 0 else { throw ValidationError("--duration must be positive, --warmup not negative") }
        if let hlsPart, hlsPart.contains(where: { !$0.isLetter && !$0.isNumber && $0 != "." }) {
            throw ValidationError("--hls-part: a duration such as 200ms, not '\(hlsPart)'")
        }
    }

    func run() async throws {
        warnIfDebugBuild()
        guard FileManager.default.fileExists(atPath: viewerScript) else {
            throw BenchmarkError(message: "\(viewerScript) not found (run from the repository, or pass --viewer-script PATH)")
        }
        let clip = try await BlockingIOThread.run(name: "bench-ffmpeg") { try LatencyFixture.clip() }
        let media = try SimulatedMedia(file: ByteBuffer(bytes: try Data(contentsOf: URL(fileURLWithPath: clip))))
        let timelineFrames = media.fragments.count
        let (simulator, urls, origin) = try await ChildProcess.simulator(media: clip, cameras: 1)
        defer { withExtendedLifetime(simulator) {} }
        guard let cameraURL = urls.first else { throw BenchmarkError(message: "the simulator named no camera") }
        let port = try WebBenchmark.freePort()
        let pipeline = try pipelineFile(camera: cameraURL, port: port)
        defer { try? FileManager.default.removeItem(at: pipeline) }
        let camflow = try ChildProcess(["run", pipeline.path, "--status-interval", "0", "--log-level", "error", "--quiet"])
        defer { withExtendedLifetime(camflow) {} }
        let timeline = SenderTimeline(originMilliseconds: Double(origin) / 1e6, frameDuration: media.loopSeconds / Double(timelineFrames),
                                      framesPerLoop: timelineFrames)
        print("camera: \(clip), 1280x720, \(Int((1 / timeline.frameDuration).rounded())) fps, one fragment per frame; camflow on 127.0.0.1:\(port)")
        if let save { _ = FileManager.default.createFile(atPath: save, contents: nil) }
        let loadBefore = Self.loadAverage()
        var results: [(WayLatency, [[String: Double]])] = []
        for group in together ? [chosen] : chosen.map({ [$0] }) {
            let recording = try await watch(group, base: "http://127.0.0.1:\(port)")
            for error in recording.errors { print("error: \(error)") }
            for way in LatencyAnalysis.analyse(recording, timeline: timeline, warmup: warmup, ways: group) {
                results.append((way, recording.diagnostics[way.way] ?? []))
            }
        }
        // Two cores shared with a browser decoding 720p: other work on the machine shows in every number.
        print("load average (1 min): \(loadBefore) at the start, \(Self.loadAverage()) at the end")
        for (way, diagnostics) in results {
            print(LatencyReport.line(way))
            if let goal = LatencyReport.goal(way) { print(goal) }
            if !way.mapping.isEmpty { print(LatencyReport.detail(way, diagnostics: diagnostics)) }
        }
        let shareWays = chosen.compactMap { ShareWay(rawValue: $0) }
        if share != "none", !shareWays.isEmpty {
            printError("camflow's own share at \(share) viewers...")
            let lines = try await measureCamflowShare(binary: "/proc/self/exe", viewerCounts: LiveBenchOptions.counts(share),
                                                      ways: shareWays)
            print("camflow's own share (camera message in -> viewer's socket):")
            print(lines.joined(separator: "\n"))
        }
    }

    static func loadAverage() -> String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").first.map(String.init) ?? "?"
    }

    /// camflow's pipeline: the camera, parsed, restreamed by the web sink (WebRTC on a free UDP port).
    private func pipelineFile(camera: String, port: Int) throws -> URL {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-bench-latency-\(getpid()).yaml")
        let part = hlsPart.map { ", hls-part: \($0)" } ?? ""
        let yaml = """
            name: bench-latency
            nodes:
              cam: { type: instar-camera, url: "\(camera)", username: admin, password: instar, idle-timeout: 30s }
              parse: { type: mp4-parse, inputs: [cam] }
              web: { type: web, inputs: [parse], bind: "127.0.0.1:\(port)", webrtc-port: 0\(part) }

            """
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    /// Runs the Chromium driver for `group` and reads back what it recorded.
    private func watch(_ group: [String], base: String) async throws -> LatencyRecording {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-bench-latency-\(getpid())-\(UUID().uuidString)")
        let out = output.appendingPathExtension("out")
        let err = output.appendingPathExtension("err")
        for file in [out, err] { _ = FileManager.default.createFile(atPath: file.path, contents: nil) }
        defer { for file in [out, err] { try? FileManager.default.removeItem(at: file) } }
        let driver = Process()
        driver.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        driver.arguments = [viewerScript, "--base", base, "--ways", group.joined(separator: ","),
                            "--duration", "\(duration + warmup)", "--webrtc-page", webrtcPage] + (mseSlackTarget.map { ["--mse-slack-target", "\($0)"] } ?? [])
        driver.standardInput = FileHandle.nullDevice
        driver.standardOutput = try FileHandle(forWritingTo: out)
        driver.standardError = try FileHandle(forWritingTo: err)
        printError("watching by \(group.joined(separator: ", ")) for \(Int(duration + warmup)) s...")
        let status = try await Self.run(driver, atMost: .seconds(duration + warmup + 180))
        let text = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
        if let save {
            // One file over every way watched in turn: appended.
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: save))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(text.utf8))
            try handle.close()
        }
        var recording = LatencyRecording(jsonLines: text)
        if status != 0 {
            // What was recorded until then still counts (an hour's run is not thrown away for its last minute).
            let tail = ((try? String(contentsOf: err, encoding: .utf8)) ?? "").split(separator: "\n").suffix(5).joined(separator: " | ")
            guard !recording.frames.isEmpty else { throw BenchmarkError(message: "the Chromium driver failed (status \(status)): \(tail)") }
            recording.errors.append("driver: ended with status \(status) before --duration: \(tail)")
        }
        return recording
    }

    /// Starts `process` and returns its exit status; it is terminated after `limit`. Told by
    /// its termination handler: `waitUntilExit` spins a run loop with nothing in it, which kept
    /// a core 55 % busy beside the browser being measured.
    static func run(_ process: Process, atMost limit: Duration, clock: any PipelineClock = SystemClock()) async throws -> Int32 {
        let (exits, exited) = AsyncStream<Int32>.makeStream(bufferingPolicy: .bufferingNewest(1))
        process.terminationHandler = { ended in
            exited.yield(ended.terminationStatus)
            exited.finish()
        }
        try process.run()
        return try await withThrowingTaskGroup(of: Int32?.self) { group in
            group.addTask {
                for await status in exits { return status }
                return -1
            }
            group.addTask {
                try await clock.sleep(for: limit)
                if process.isRunning { process.terminate() }
                return nil
            }
            while let result = try await group.next() {
                if let status = result {
                    group.cancelAll()
                    return status
                }
            }
            return -1
        }
    }
}

/// The bench's camera media: 720p 25 fps H.264 without B-frames, one
/// fragment per frame, 10 s looped by the simulator, the frame number as a
/// 32-block binary strip in the top 16 rows (40 px a bit, least significant
/// on the left; design note §9).
enum LatencyFixture {
    static func clip() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-bench-latency-720p25.mp4").path
        guard !FileManager.default.fileExists(atPath: path) else { return path }
        guard BenchTools.which("ffmpeg") != nil else {
            throw BenchmarkError(message: "ffmpeg is needed to make the benchmark media (apt-get install -y ffmpeg)")
        }
        printError("making \(path) with ffmpeg (once)...")
        let strip = "geq=lum='if(lt(Y,16),if(mod(floor(N/pow(2,floor(X/40))),2),235,16),p(X,Y))'"
            + ":cb='if(lt(Y,8),128,p(X,Y))':cr='if(lt(Y,8),128,p(X,Y))'"
        do {
            _ = try ProcessMeasurement.run([
                "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25",
                "-t", "10", "-vf", strip, "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-bf", "0",
                "-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-b:v", "3M", "-maxrate", "3M", "-bufsize", "1M",
                "-pix_fmt", "yuv420p", "-an", "-movflags", "frag_every_frame+empty_moov+default_base_moof", "-f", "mp4", path,
            ])
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw BenchmarkError(message: "ffmpeg could not make \(path): \(error)")
        }
        return path
    }
}
