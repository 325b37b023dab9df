import CamflowTesting
import Foundation
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// What the web sink serves besides the camera protocol, read by the tools
/// users point at it: LL-HLS read by ffmpeg and parsed by Python's m3u8,
/// snapshots, clips cut from recordings, and the recordings page in
/// headless Chromium.
@Suite struct WebMediaEndToEndTests {
    /// Python with the m3u8 package: the virtual environment `make test` makes.
    static let venvPython = repositoryRoot.appendingPathComponent(".venv/bin/python").path

    /// Runs a tool to its end; its exit status and output.
    func run(_ executable: String, _ arguments: [String], timeout: Duration = .seconds(90)) async throws
        -> (status: Int32, stdout: String, stderr: String)
    {
        let tool = try CamflowProcess(arguments, executable: executable)
        let status = try await tool.waitForExit(timeout: timeout)
        return (status, tool.stdout, tool.stderr)
    }

    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "\(text)")
    }

    @Test func hlsSnapshotsRecordingsAndClips_asUsersReadThem() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.venvPython),
                     "no .venv with the m3u8 package: run `make test` (or `make venv`) first")
        let sim = try CamflowProcess(["sim", "--port", "0"])
        defer { sim.process.terminate() }
        try await sim.waitForLine { $0.hasPrefix("camera 1: ") }
        let url = try #require(sim.stdout.split(separator: "\n").first { $0.hasPrefix("camera 1: ") }).dropFirst(10)
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-web-rec-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        // The camera (one 2 s fragment per GOP) is recorded in 10 s files; a replay of
        // one fragment per frame shows parts appearing as frames arrive.
        let pipeline = try temporaryPipeline("""
            nodes:
              camera: { type: instar-camera, url: "\(url)", username: admin, password: instar }
              parse: { type: mp4-parse, inputs: [camera] }
              replay: { type: file-replay, path: "\(repositoryRoot.path)/Tests/Fixtures/h264-fragment-per-frame.mp4", realtime: true, loop: true }
              replayed: { type: mp4-parse, inputs: [replay] }
              record: { type: file-record, inputs: [parse], path: "\(root)/{stream}/%H%M%S.mp4", segment: 10s }
              web: { type: web, inputs: [parse, replayed], bind: "127.0.0.1:0", recordings: ["\(root)"] }
            """)
        let camflow = try CamflowProcess(["run", pipeline, "--status-interval", "0"])
        defer { camflow.process.terminate() }
        try await camflow.waitForLine(timeout: .seconds(60), inStderr: true) { $0.contains("serving http://127.0.0.1:") }
        let line = try #require(camflow.stderr.split(separator: "\n").first { $0.contains("serving http://127.0.0.1:") })
        let port = try #require(line.split(separator: "serving http://127.0.0.1:").last?.prefix { $0.isNumber })
        let base = "http://127.0.0.1:\(port)"
        #expect(line.contains("camera protocol: ws://127.0.0.1:\(port)/ws"), "the start-up line names the WebSocket as ws://: \(line)")
        let started = Date().timeIntervalSince1970

        // LL-HLS: the playlist parses, with the low-latency tags.
        try await waitUntil("the camera's first whole HLS segment", timeout: .seconds(60)) {
            (try? await rawHTTP(port: Int(port)!, "/hls/camera/index.m3u8").status) == 200
        }
        let camera = try json(try await run(Self.venvPython, ["Tests/Peers/hls_check.py", "\(base)/hls/camera/index.m3u8",
                                                              "--blocking", "0"]).stdout)
        #expect(camera["version"] as? Int ?? 0 >= 7)
        #expect(camera["independentSegments"] as? Bool == true)
        #expect(camera["canBlockReload"] as? Bool == true)
        #expect(camera["partTarget"] as? Double == 0.5)
        #expect(camera["targetDuration"] as? Int == 2)
        #expect((camera["map"] as? String)?.hasPrefix("init-") == true)
        #expect((camera["preloadHint"] as? String)?.hasPrefix("part-") == true)
        let segments = try #require(camera["segments"] as? [[String: Any]])
        #expect(segments.contains { ($0["parts"] as? Int ?? 0) > 1 && $0["firstPartIndependent"] as? Bool == true },
                "a 2 s fragment is cut into parts: \(segments)")
        #expect((camera["partDurations"] as? [Double] ?? []).allSatisfy { $0 <= 0.5 })

        // A blocking reload answers when the next part appears: parts of the replay come
        // every 0.48 s, so each wait is about one part long, never a fragment's or a segment's.
        let replay = try json(try await run(Self.venvPython, ["Tests/Peers/hls_check.py", "\(base)/hls/replay/index.m3u8",
                                                              "--blocking", "8"]).stdout)
        let waits = try #require(replay["blocking"] as? [[String: Any]])
        #expect(waits.count == 8 && waits.allSatisfy { $0["listed"] as? Bool == true }, "\(waits)")
        let seconds = waits.compactMap { $0["seconds"] as? Double }.sorted()
        #expect(seconds[seconds.count / 2] <= 0.6, "median wait for the next 0.48 s part: \(seconds)")
        #expect(seconds.last ?? 99 <= 1.0, "the longest wait: \(seconds)")

        // Requests the protocol forbids are refused, not held.
        #expect(try await rawHTTP(port: Int(port)!, "/hls/replay/index.m3u8?_HLS_part=1").status == 400)
        #expect(try await rawHTTP(port: Int(port)!, "/hls/replay/index.m3u8?_HLS_msn=999999999999").status == 400)
        #expect(try await rawHTTP(port: Int(port)!, "/hls/replay/part-1.99999.m4s").status == 404)

        // ffmpeg reads the playlist and decodes 10 s without an error.
        let decoded = try await run("/usr/bin/ffmpeg", ["-v", "error", "-i", "\(base)/hls/camera/index.m3u8", "-t", "11",
                                                        "-map", "0:v:0", "-f", "framecrc", "-"])
        #expect(decoded.status == 0 && decoded.stderr.isEmpty, "\(decoded.stderr)")
        let frames = decoded.stdout.split(separator: "\n").filter { !$0.hasPrefix("#") }.count
        #expect(frames >= 250, "at least 10 s at 25 fps: \(frames) frames")

        // Snapshots: the stream's size, or the width asked for.
        for (query, size) in [("", "640,360"), ("?width=320", "320,180")] {
            let probe = try await run("/usr/bin/ffprobe", ["-v", "error", "-show_entries", "stream=codec_name,width,height",
                                                           "-of", "csv=p=0", "\(base)/snapshot/camera.jpg\(query)"])
            #expect(probe.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "mjpeg,\(size)", "\(probe)")
        }
        #expect(try await rawHTTP(port: Int(port)!, "/snapshot/nothing.jpg").status == 503)
        #expect(try await rawHTTP(port: Int(port)!, "/snapshot/camera.jpg?width=1").status == 400)

        // 30 s of recording, in 10 s files.
        var listing: [String: Any] = [:]
        try await waitUntil("three finished recordings", timeout: .seconds(90)) {
            listing = (try? await json(rawHTTP(port: Int(port)!, "/api/recordings?stream=camera").body)) ?? [:]
            return (listing["recordings"] as? [[String: Any]] ?? []).count >= 3
        }
        let files = try #require(listing["recordings"] as? [[String: Any]])
        let starts = files.compactMap { $0["start"] as? Double }, ends = files.compactMap { $0["end"] as? Double }
        #expect(starts.first ?? 0 >= started - 5)
        #expect((listing["gaps"] as? [Any])?.isEmpty == true, "\(listing)")

        // 6 s inside the second file: starts with a keyframe, lasts 6 s to 6 s plus a GOP.
        let inside = starts[1] + 3.3
        let clip = "\(base)/api/recordings/camera/clip.mp4?start=\(inside)&duration=6"
        try await expectPlayable(clip, atLeast: 6, atMost: 8)
        // Across the join of the second and third files: one playable file.
        let across = "\(base)/api/recordings/camera/clip.mp4?start=\(ends[1] - 3)&duration=6"
        try await expectPlayable(across, atLeast: 6, atMost: 8)
        #expect(try await rawHTTP(port: Int(port)!, "/api/recordings/camera/clip.mp4?start=1000&duration=6").status == 404)
        #expect(try await rawHTTP(port: Int(port)!, "/api/recordings/camera/clip.mp4?start=yesterday&duration=6").status == 400)

        // The recordings page: the timeline drawn, a click plays a clip.
        let screenshot = WebEndToEndTests.artifacts.appendingPathComponent("recordings.png").path
        let check = try await run("/usr/bin/python3", ["Tests/Browser/browser_check.py", "recordings", "\(base)/recordings",
                                                       "--screenshot", screenshot, "--play", "1.5", "--timeout", "60"], timeout: .seconds(120))
        let page = try json(check.stdout)
        #expect(page["timelines"] as? Int == 1, "\(page)")
        #expect(page["spans"] as? Int ?? 0 >= 3, "\(page)")
        #expect(page["currentTime"] as? Double ?? 0 >= 1.5, "\(page)")
        #expect(page["videoWidth"] as? Int == 640, "\(page)")
        #expect((page["download"] as? String)?.contains("/api/recordings/camera/clip.mp4?start=") == true)
        #expect((page["consoleErrors"] as? [String])?.isEmpty == true, "\(page)")
    }

    /// The clip at `url`, downloaded as a user's browser saves it, decodes without an error
    /// in ffmpeg; its video starts with a keyframe and lasts within bounds.
    func expectPlayable(_ url: String, atLeast: Double, atMost: Double, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let (data, response) = try await URLSession.shared.data(from: try #require(URL(string: url)))
        #expect((response as? HTTPURLResponse)?.statusCode == 200, sourceLocation: sourceLocation)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-clip-\(UUID().uuidString).mp4")
        try data.write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let decoded = try await run("/usr/bin/ffmpeg", ["-v", "error", "-i", file.path, "-f", "null", "-"])
        #expect(decoded.status == 0 && decoded.stderr.isEmpty, "\(url): \(decoded.stderr)", sourceLocation: sourceLocation)
        let probe = try await run("/usr/bin/ffprobe", ["-v", "error", "-select_streams", "v", "-show_entries",
                                                       "stream=duration:frame=key_frame", "-read_intervals", "%+#1",
                                                       "-of", "json", file.path])
        let info = try json(probe.stdout)
        let frames = try #require(info["frames"] as? [[String: Any]], "\(probe.stdout)")
        #expect(frames.first?["key_frame"] as? Int == 1, "\(url) starts with a keyframe", sourceLocation: sourceLocation)
        let durationText = (info["streams"] as? [[String: Any]])?.first?["duration"] as? String
        let duration = try #require(durationText.flatMap { Double($0) }, "\(probe.stdout)")
        #expect(duration >= atLeast && duration <= atMost, "\(url): \(duration) s", sourceLocation: sourceLocation)
    }
}
