import ArgumentParser
import Camflow
import CamflowCLI
import Foundation

/// One histogram of Prometheus text: its finite upper bounds (seconds,
/// ascending), the cumulative count at each, and the total (`+Inf`).
struct BucketCounts: Equatable {
    var bounds: [Double] = []
    var cumulative: [UInt64] = []
    var count: UInt64 = 0

    /// The `<metric>_bucket` lines whose labels include `labels`; nil when there are none.
    static func parse(_ text: String, metric: String, labels: [String: String]) -> BucketCounts? {
        var finite: [(Double, UInt64)] = []
        var total: UInt64?
        for line in text.split(separator: "\n") where line.hasPrefix("\(metric)_bucket{") {
            guard let open = line.firstIndex(of: "{"), let close = line.lastIndex(of: "}"),
                  let value = UInt64(line[line.index(after: close)...].trimmingCharacters(in: .whitespaces)) else { continue }
            var found: [String: String] = [:]
            for pair in line[line.index(after: open)..<close].split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { continue }
                found[String(parts[0])] = String(parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")))
            }
            guard labels.allSatisfy({ found[$0.key] == $0.value }), let bound = found["le"] else { continue }
            if bound == "+Inf" {
                total = value
            } else if let seconds = Double(bound) {
                finite.append((seconds, value))
            }
        }
        guard let total else { return nil }
        finite.sort { $0.0 < $1.0 }
        return BucketCounts(bounds: finite.map(\.0), cumulative: finite.map(\.1), count: total)
    }

    /// What was recorded between `earlier` and this reading.
    func subtracting(_ earlier: BucketCounts?) -> BucketCounts {
        guard let earlier, earlier.bounds == bounds else { return self }
        return BucketCounts(bounds: bounds, cumulative: zip(cumulative, earlier.cumulative).map { $0 &- $1 },
                            count: count &- earlier.count)
    }

    /// The `q` quantile in seconds, placed linearly inside its bucket as
    /// Prometheus' `histogram_quantile` does (the first bucket starts at 0);
    /// `.infinity` when it lies past the last finite bound, nil when empty.
    func quantile(_ q: Double) -> Double? {
        guard count > 0 else { return nil }
        let rank = q * Double(count)
        for (index, bound) in bounds.enumerated() where Double(cumulative[index]) >= rank {
            let lower = index == 0 ? 0 : bounds[index - 1]
            let below = index == 0 ? 0 : Double(cumulative[index - 1])
            let inside = Double(cumulative[index]) - below
            return inside > 0 ? lower + (bound - lower) * (rank - below) / inside : bound
        }
        return .infinity
    }

    /// The upper bound of the highest bucket holding anything: the most
    /// the largest value can be (`.infinity` past the last bound).
    var maxBound: Double? {
        guard count > 0 else { return nil }
        if let last = cumulative.last, last < count { return .infinity }
        return zip(bounds, cumulative).first { $0.1 == count }?.0
    }

    /// `p50 0.4 ms  p99 1.2 ms  max ≤2 ms`.
    var summary: String {
        guard let p50 = quantile(0.5), let p99 = quantile(0.99), let top = maxBound else { return "no fragments recorded" }
        let last = bounds.last.map { Self.milliseconds($0) } ?? "?"
        func text(_ seconds: Double) -> String { seconds.isFinite ? "\(Self.milliseconds(seconds)) ms" : ">\(last) ms" }
        return "p50 \(text(p50))  p99 \(text(p99))  max \(top.isFinite ? "≤" : "")\(text(top))"
    }

    static func milliseconds(_ seconds: Double) -> String {
        let ms = seconds * 1000
        return ms < 10 ? ms.text(2) : ms.text(1)
    }
}

/// The ways a web sink's viewer watches that the share is measured for.
enum ShareWay: String, CaseIterable, ExpressibleByArgument {
    case mse, webrtc
}

/// camflow's own share of a viewer's latency: for each viewer count, a
/// simulated 720p 25 fps camera (one fragment per frame) into `binary run`
/// of `instar-camera → mp4-parse → web`, N viewers per way attached from a
/// Python process, and `camflow_web_delivery_seconds` read from `/metrics`
/// before and after `seconds`: the time from a camera message's arrival to
/// the fragment's last bytes handed to each viewer's socket. One line per
/// way and count, quantiles from the buckets (0.25, 0.5, 1, 2, 3, 5, 7.5,
/// 10, 20, 50, 100 ms ...), linear inside a bucket.
func measureCamflowShare(binary: String, viewerCounts: [Int], seconds: Int = 15,
                         ways: [ShareWay] = ShareWay.allCases) async throws -> [String] {
    let clip = try shareClip()
    var lines: [String] = []
    for count in viewerCounts {
        let sim = try ChildProcess(["sim", "--port", "0", "--media", clip, "--log-level", "error"], executable: binary)
        try await sim.waitForLine(startingWith: "timeline-origin-ns: ")
        guard let camera = sim.lines.first(where: { $0.hasPrefix("camera 1: ") })?.split(separator: " ").last else {
            throw BenchmarkError(message: "the simulator printed no camera URL")
        }
        let port = try WebBenchmark.freePort()
        let pipeline = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-share-\(getpid())-\(count).yaml")
        try """
            name: latency-share
            nodes:
              cam: { type: instar-camera, url: "\(camera)", username: admin, password: instar }
              parse: { type: mp4-parse, inputs: [cam] }
              web: { type: web, inputs: [parse], bind: "127.0.0.1:\(port)", webrtc-port: 0, webrtc-max-sessions: \(max(32, count)),
                     max-connections: \(max(256, count + 16)), max-connections-per-client: \(count + 16) }
            """.write(to: pipeline, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: pipeline) }
        let run = try ChildProcess(["run", pipeline.path, "--status-interval", "0", "--log-level", "error", "--quiet"],
                                   executable: binary)
        let base = "http://127.0.0.1:\(port)"
        let stream = try await waitFor("the web sink's stream", seconds: 60) { () -> String? in
            let json = try? JSONSerialization.jsonObject(with: WebBenchmark.httpGet(URL(string: "\(base)/api/stats")!))
            return ((json as? [String: Any])?["streams"] as? [[String: Any]])?.first?["name"] as? String
        }
        for way in ways {
            let viewers = count
            let (histogram, connected) = try await measure(way, viewers: viewers, base: base, port: port, stream: stream,
                                                           seconds: seconds)
            var line = "share \(way.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0)) "
                + "\(String(viewers).leftPadded(3)) viewers  \(histogram.summary)  (\(histogram.count) fragments, load \(loadAverage()))"
            if connected < viewers { line += "  only \(connected) of \(viewers) viewers connected" }
            printError(line)
            lines.append(line)
        }
        run.process.terminate()
        sim.process.terminate()
    }
    return lines
}

/// Attaches `viewers` of `way`, waits until they are all served (or 30 s),
/// and returns what the histogram gained over `seconds` and how many were connected.
private func measure(_ way: ShareWay, viewers: Int, base: String, port: Int, stream: String,
                     seconds: Int) async throws -> (BucketCounts, connected: Int) {
    let script = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-share-\(way)-\(getpid()).py")
    try (way == .mse ? LatencySharePeers.webSocket : LatencySharePeers.whep).write(to: script, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: script) }
    let target = way == .mse ? "\(port)" : "\(base)/whep/\(stream)"
    let peers = try ChildProcess([script.path, target, "\(viewers)", "\(seconds + 60)"], executable: "/usr/bin/python3")
    // SIGKILL: GLib's threads block SIGTERM, and peers left running would load the next measurement.
    defer {
        kill(peers.process.processIdentifier, SIGKILL)
        peers.process.waitUntilExit()
    }
    let metrics = URL(string: "\(base)/metrics")!
    func connectedNow() -> Int {
        if way == .mse {
            let json = try? JSONSerialization.jsonObject(with: WebBenchmark.httpGet(URL(string: "\(base)/api/stats")!))
            let list = (json as? [String: Any])?["viewers"] as? [[String: Any]] ?? []
            return list.count { ($0["sentFragments"] as? Int ?? 0) > 0 }
        }
        let text = String(decoding: (try? WebBenchmark.httpGet(metrics)) ?? Data(), as: UTF8.self)
        let line = text.split(separator: "\n").first { $0.hasPrefix("camflow_webrtc_connected_peers{") }
        return line.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }.map { Int($0) } ?? 0
    }
    let deadline = ContinuousClock.now + .seconds(30)
    while connectedNow() < viewers, ContinuousClock.now < deadline, peers.process.isRunning {
        try await Task.sleep(for: .milliseconds(250))
    }
    // Joiners are sent the cached GOP first: their first live fragments wait behind it, so they settle first.
    try await Task.sleep(for: .seconds(2))
    let labels = ["way": way.rawValue]
    let before = BucketCounts.parse(String(decoding: try WebBenchmark.httpGet(metrics), as: UTF8.self),
                                    metric: "camflow_web_delivery_seconds", labels: labels)
    let connected = connectedNow()
    try await Task.sleep(for: .seconds(seconds))
    guard let after = BucketCounts.parse(String(decoding: try WebBenchmark.httpGet(metrics), as: UTF8.self),
                                         metric: "camflow_web_delivery_seconds", labels: labels) else {
        throw BenchmarkError(message: "no camflow_web_delivery_seconds{way=\"\(way)\"} in /metrics")
    }
    return (after.subtracting(before), min(connected, connectedNow()))
}

/// The machine's 1-minute load average: the share is camflow's alone only on a machine that is otherwise idle.
private func loadAverage() -> String {
    ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").first.map(String.init) ?? "?"
}

/// Polls `value` every 100 ms until it gives something, for at most `seconds`.
private func waitFor<T>(_ what: String, seconds: Int, _ value: () throws -> T?) async throws -> T {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while ContinuousClock.now < deadline {
        if let found = try value() { return found }
        try await Task.sleep(for: .milliseconds(100))
    }
    throw BenchmarkError(message: "\(what) did not appear within \(seconds) s")
}

/// 20 s of 1280x720 at 25 fps, H.264 without B-frames (WebRTC takes none),
/// 2 Mbit/s, a keyframe every 2 s, one fragment per frame (what a
/// low-latency camera sends), no audio; made with ffmpeg on first use.
private func shareClip() throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-bench-720p25-frame-fragments.mp4").path
    guard !FileManager.default.fileExists(atPath: path) else { return path }
    printError("making \(path) with ffmpeg (once)...")
    do {
        _ = try ProcessMeasurement.run([
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25",
            "-t", "20", "-c:v", "libx264", "-profile:v", "main", "-preset", "ultrafast", "-bf", "0", "-b:v", "2M",
            "-maxrate", "2M", "-bufsize", "4M", "-g", "50", "-sc_threshold", "0", "-an",
            "-movflags", "frag_every_frame+empty_moov+default_base_moof", "-f", "mp4", path,
        ])
    } catch {
        try? FileManager.default.removeItem(atPath: path)
        throw BenchmarkError(message: "ffmpeg could not make \(path): \(error)")
    }
    return path
}

private extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}

/// `camflow bench latency-share`: camflow's own share of the latency alone.
struct LatencyShareBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latency-share",
        abstract: "camflow's own share of a viewer's latency: camera message received -> bytes to the viewer's socket.",
        discussion: """
            A simulated 720p 25 fps camera (one fragment per frame) into 'camflow run' of instar-camera -> \
            mp4-parse -> web, with N viewers per way from a Python process: camera-protocol WebSocket \
            viewers (mse) and WHEP peers (webrtc, GStreamer's webrtcbin without decoding; the sink's \
            webrtc-max-sessions is raised to the count). Quantiles come from camflow_web_delivery_seconds in /metrics, \
            placed linearly inside its buckets (0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 20, 50, 100 ms ...).
            """)

    @Option(help: "Viewer counts, comma-separated.")
    var viewers = "1,10,50"

    @Option(help: "Measured seconds per count and way.")
    var seconds = 15

    @Option(help: "Ways to watch, comma-separated: mse, webrtc.")
    var ways = "mse,webrtc"

    func validate() throws {
        guard !LiveBenchOptions.counts(viewers).isEmpty else { throw ValidationError("--viewers: expected numbers such as 1,10,50") }
        guard seconds > 0 else { throw ValidationError("--seconds must be positive") }
        for way in ways.split(separator: ",") where ShareWay(rawValue: String(way)) == nil {
            throw ValidationError("--ways: mse or webrtc, not '\(way)'")
        }
    }

    func run() async throws {
        warnIfDebugBuild()
        let lines = try await measureCamflowShare(binary: "/proc/self/exe", viewerCounts: LiveBenchOptions.counts(viewers),
                                                  seconds: seconds, ways: ways.split(separator: ",").compactMap { ShareWay(rawValue: String($0)) })
        print(lines.joined(separator: "\n"))
    }
}
