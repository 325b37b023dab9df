import CamflowTesting
import Foundation
import Testing

/// GStreamer's RTSP server (Tests/Peers/gst_rtsp_server.py) serving a fixture; its URL.
func gstreamerServer(_ fixture: String, port: Int = 0, extra: [String] = []) async throws -> (TestProcess, String) {
    let server = try TestProcess(["Tests/Peers/gst_rtsp_server.py", "--port", "\(port)", "--file", "Tests/Fixtures/\(fixture)"] + extra,
                                 executable: "/usr/bin/python3")
    try await server.wait("the GStreamer server", timeout: .seconds(30)) { server.stdout.hasPrefix("ready ") || !server.process.isRunning }
    let line = server.stdout.split(separator: "\n").first ?? ""
    guard line.hasPrefix("ready ") else {
        Issue.record("the GStreamer server did not start: \(server.stderr)")
        throw CancellationError()
    }
    return (server, String(line.dropFirst("ready ".count)))
}

/// A pipeline file in a fresh temporary directory.
func cameraPipeline(_ text: String) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-camera-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let path = dir.appendingPathComponent("pipeline.yaml").path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

/// Finished or in-progress recordings under `root`.
func cameraRecordings(_ root: String, suffix: String = ".mp4") -> [String] {
    (FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String } ?? [])
        .filter { $0.hasSuffix(suffix) }.map { root + "/" + $0 }.sorted()
}

/// ffprobe's decoded frame count per stream kind, and ffmpeg's error lines.
func cameraInspect(_ path: String) async throws -> (video: Int, audio: Int, codec: String, size: String, errors: String) {
    let errors = try await runTool("/usr/bin/ffmpeg", ["-v", "error", "-i", path, "-f", "null", "-"]).stderr
    let rows = try await runTool("/usr/bin/ffprobe", ["-v", "error", "-count_frames", "-show_entries",
                                                     "stream=codec_type,codec_name,width,height,nb_read_frames", "-of", "csv=p=0", path]).stdout
        .split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    var video = 0, audio = 0, codec = "", size = ""
    for row in rows where row.count >= 3 {
        if row[1] == "video", row.count >= 5 {
            codec = row[0]
            size = "\(row[2])x\(row[3])"
            video += Int(row[4]) ?? 0
        } else if row[1] == "audio" {
            audio += Int(row.last ?? "") ?? 0
        }
    }
    return (video, audio, codec, size, errors)
}
