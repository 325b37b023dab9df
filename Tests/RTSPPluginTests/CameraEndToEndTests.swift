import CamflowTesting
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// rtsp-camera through the real binary against GStreamer's RTSP server
/// (Tests/Peers/gst_rtsp_server.py): `rtsp-camera → mp4-parse → file-record`
/// records what the server sends, frame for frame.
@Suite(.serialized) struct RTSPCameraEndToEndTests {
    func recordingPipeline(url: String, root: String, _ options: String = "") throws -> String {
        try cameraPipeline("""
            nodes:
              cam: { type: rtsp-camera, url: "\(url)", reconnect-min: 100ms, reconnect-max: 500ms, \(options) }
              parse: { type: mp4-parse, inputs: [cam] }
              record: { type: file-record, inputs: [parse], path: "\(root)/{stream}/%H%M%S.mp4", segment: 60s }
              log: { type: log, inputs: [cam] }
            """)
    }

    /// The whole fixture, recorded: decodes without an error and holds ffprobe's frame count of the source.
    /// h264-high-bframes.mp4's RTP steps back two frames at its second keyframe (GStreamer's timestamps): the timeline moves on.
    @Test(arguments: [("h264-main-aac.mp4", "tcp", "digest"), ("h265.mp4", "tcp", "basic"), ("h264-main-aac.mp4", "udp", "basic"),
                      ("h265.mp4", "udp", "digest"), ("h264-high-bframes.mp4", "tcp", "digest")])
    func recordsEveryFrame(_ fixture: String, _ transport: String, _ auth: String) async throws {
        let (server, url) = try await gstreamerServer(fixture, extra: ["--user", "admin", "--password", "se cret", "--auth", auth])
        defer { server.process.terminate() }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-rtsp-\(UUID().uuidString)").path
        let pipeline = try recordingPipeline(url: url, root: root, "username: admin, password: \"se cret\", transport: \(transport)")
        // The server sends the fixture once, in real time, then an RTCP BYE on each track.
        let run = try TestProcess(["run", pipeline])
        let tracks = fixture.hasSuffix("-aac.mp4") ? 2 : 1
        try await run.wait("the end of every track") { run.stderr.components(separatedBy: "(RTCP BYE)").count - 1 >= tracks }
        run.process.interrupt()
        #expect(try await run.waitForExit(timeout: .seconds(60)) == 0, "\(run.stderr.suffix(2000))")
        let files = cameraRecordings(root)
        #expect(files.count == 1, "\(files)\n\(run.stderr.suffix(2000))")
        let source = try await cameraInspect("Tests/Fixtures/\(fixture)")
        guard let file = files.first else { return }
        let recorded = try await cameraInspect(file)
        #expect(recorded.errors.isEmpty, "ffmpeg: \(recorded.errors.prefix(800))")
        #expect(recorded.codec == source.codec && recorded.size == source.size)
        #expect(recorded.video == source.video, "\(recorded.video) frames recorded of \(source.video)")
        if source.audio > 0 {
            // The server's audio runs past the video's last frame, which the recording ends on.
            #expect(recorded.audio > source.audio * 8 / 10, "\(recorded.audio) audio frames of \(source.audio)")
        }
        #expect(run.stdout.contains(" connected url=\(url)"), "\(run.stdout.suffix(1000))")
        #expect(!run.stdout.contains("se cret") && !run.stderr.contains("se cret"), "the password was printed")
    }

    /// A wrong password: refused, said, never printed, and the process stays up until told to stop.
    @Test func aWrongPassword_isAnAuthFailedEvent() async throws {
        let (server, url) = try await gstreamerServer("h265.mp4", extra: ["--user", "admin", "--password", "right", "--auth", "basic"])
        defer { server.process.terminate() }
        let secret = "wrong-\(UUID().uuidString.prefix(6))"
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-rtsp-\(UUID().uuidString)").path
        let run = try TestProcess(["run", try recordingPipeline(url: url, root: root, "username: admin, password: \(secret)"), "--for", "2s"])
        #expect(try await run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        #expect(run.stdout.contains(" auth-failed status=401"), "\(run.stdout.suffix(1000))")
        #expect(!run.stdout.contains(secret) && !run.stderr.contains(secret))
    }

    /// The server goes away and comes back on the same port: the node reconnects and records on; the process never exits.
    @Test func serverRestart_recordingContinues() async throws {
        let (first, url) = try await gstreamerServer("h264-main-aac.mp4", extra: ["--loop"])
        let port = Int(url.split(separator: ":").last?.split(separator: "/").first ?? "") ?? 0
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-rtsp-\(UUID().uuidString)").path
        let run = try TestProcess(["run", try recordingPipeline(url: url, root: root, "idle-timeout: 1s")])
        defer { run.process.interrupt() }
        try await run.wait("the first recording") { !cameraRecordings(root, suffix: ".partial").isEmpty }
        kill(first.process.processIdentifier, SIGKILL) // the server dies, it does not say goodbye
        _ = try await first.waitForExit()
        try await run.wait("a disconnect") { run.stdout.contains(" disconnected ") }
        let (second, _) = try await gstreamerServer("h264-main-aac.mp4", port: port, extra: ["--loop"])
        defer { second.process.terminate() }
        try await run.wait("the second connection") {
            run.stdout.components(separatedBy: " connected url=").count - 1 >= 2
        }
        // Recording goes on: a second file (a reconnect starts one) fills.
        try await run.wait("a second file") {
            cameraRecordings(root).count + cameraRecordings(root, suffix: ".partial").count >= 2
        }
        #expect(run.process.isRunning)
        run.process.interrupt()
        #expect(try await run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        let files = cameraRecordings(root)
        #expect(files.count >= 2, "\(files)")
        for file in files {
            let recorded = try await cameraInspect(file)
            #expect(recorded.errors.isEmpty && recorded.video > 0, "\(file): \(recorded.errors.prefix(500))")
        }
    }
}
