import CamflowTesting
import Foundation
import Testing

/// Snapshots through the real binary, with a script in ffmpeg's place that
/// records what each decoder was given, then runs the real one: no secret
/// of camflow's environment and none of its sockets reach it, and a keyframe
/// whose SPS declares a 16000x16000 picture is refused without running it.
@Suite struct SnapshotHardeningEndToEndTests {
    @Test func snapshots_keepSecretsFromTheDecoder_andRefuseAnSPSBomb() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-snap-e2e-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let fake = directory + "/ffmpeg"
        try """
            #!/bin/sh
            echo run >> "$0.runs"
            env > "$0.env"
            ls -l /proc/$$/fd/ > "$0.fds"
            exec /usr/bin/ffmpeg "$@"
            """.write(toFile: fake, atomically: true, encoding: .utf8)
        chmod(fake, 0o755)
        let fixtures = repositoryRoot.appendingPathComponent("Tests/Fixtures").path
        let pipeline = try temporaryPipeline("""
            nodes:
              camera: { type: file-replay, path: "\(fixtures)/h264-fragment-per-frame.mp4", realtime: true, loop: true }
              parsed: { type: mp4-parse, inputs: [camera] }
              bomb: { type: file-replay, path: "\(fixtures)/sps-bombs/h264-16000x16000.mp4", realtime: true, loop: true }
              bombed: { type: mp4-parse, inputs: [bomb] }
              web: { type: web, inputs: [parsed, bombed], bind: "127.0.0.1:0", ffmpeg: "\(fake)", username: viewer, password: "${WEB_PASSWORD}" }
            """)
        let camflow = try CamflowProcess(["run", pipeline, "--status-interval", "0"],
                                         environment: ["CAMERA_PASSWORD": "hunter2", "WEB_PASSWORD": "s3cret"])
        defer { camflow.process.terminate() }
        try await camflow.waitForLine(timeout: .seconds(60), inStderr: true) { $0.contains("serving http://127.0.0.1:") }
        let line = try #require(camflow.stderr.split(separator: "\n").first { $0.contains("serving http://127.0.0.1:") })
        let port = try #require(Int(line.split(separator: "serving http://127.0.0.1:").last?.prefix { $0.isNumber } ?? ""))
        let authorization = "Basic " + Data("viewer:s3cret".utf8).base64EncodedString()
        try await waitUntil("a keyframe of both streams", timeout: .seconds(30)) {
            for stream in ["camera", "bomb"] {
                guard (try? await rawHTTP(port: port, "/hls/\(stream)/index.m3u8", authorization: authorization).status) == 200 else {
                    return false
                }
            }
            return true
        }

        let picture = try await rawHTTP(port: port, "/snapshot/camera.jpg", authorization: authorization)
        #expect(picture.status == 200 && picture.head.contains("image/jpeg"), "\(picture.head)")
        let environment = try String(contentsOfFile: fake + ".env", encoding: .utf8)
        #expect(!environment.contains("hunter2") && !environment.contains("s3cret") && !environment.contains("PASSWORD"),
                "\(environment)")
        #expect(environment.contains("PATH="))
        let descriptors = try String(contentsOfFile: fake + ".fds", encoding: .utf8)
        #expect(!descriptors.contains("socket:"), "camflow's sockets stay with camflow:\n\(descriptors)")

        let started = ContinuousClock.now
        let refused = try await rawHTTP(port: port, "/snapshot/bomb.jpg?width=320", authorization: authorization)
        #expect(ContinuousClock.now - started < .seconds(5), "a decode of it took 15 s")
        #expect(refused.status == 500 && refused.body.contains("16000x16000"), "\(refused)")
        #expect(try String(contentsOfFile: fake + ".runs", encoding: .utf8) == "run\n", "ffmpeg ran for the camera only")
        #expect(camflow.stderr.contains("refused: its pictures are 16000x16000"), "the log says why")
        #expect(!camflow.stderr.contains("hunter2") && !camflow.stderr.contains("s3cret"))
    }
}
