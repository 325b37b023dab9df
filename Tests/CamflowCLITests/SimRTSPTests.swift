import Foundation
import Testing

/// `camflow sim` beside an RTSP server: the shipped pipelines keep the
/// simulator off 8554, the port RTSP clients try first.
@Suite struct SimRTSPPortTests {
    /// Every shipped file that names a simulator (`ws://…:PORT/ws`) names one
    /// off 8554, so `rtsp` can bind its usual port beside the demo.
    @Test func shippedPipelinesAndScripts_keepTheSimulatorOffTheRTSPPort() throws {
        let root = repositoryRoot
        var files = ["README.md", "docs/custom-nodes.md", "scripts/demo.sh"].map { root.appendingPathComponent($0) }
        for dir in ["pipelines", "pipelines/graphs"] {
            let url = root.appendingPathComponent(dir)
            files += try FileManager.default.contentsOfDirectory(at: url, includingPropertiesForKeys: nil)
                .filter { $0.pathExtension == "yaml" }
        }
        try #require(files.count > 5)
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            for line in text.split(separator: "\n") {
                let simulator = line.contains("ws://") || line.contains("camflow sim")
                #expect(!(simulator && line.contains(":8554")) && !(line.contains("camflow sim") && line.contains("--port 8554")),
                        "\(file.lastPathComponent): \(line)")
            }
        }
    }
}
