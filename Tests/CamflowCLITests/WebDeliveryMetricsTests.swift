import CamflowTesting
import Foundation
import Testing

/// camflow's own share of a viewer's latency in /metrics:
/// `camflow_web_delivery_seconds{node,way}`.
@Suite struct WebDeliveryMetricsTests {
    /// `name{labels} value` lines of the Prometheus text, keyed by what precedes the value.
    static func samples(_ text: String) -> [String: Double] {
        var found: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            found[String(line[..<space])] = value
        }
        return found
    }

    @Test func aViewerSentLiveFragments_recordsAtMostOneDeliveryTimeEach() async throws {
        let (sim, run, port) = try await WebEndToEndTests().startWeb(simArguments: ["--speed", "4"], webOptions: ", webrtc-port: 0, hls: false")
        defer { sim.process.terminate(); run.process.terminate() }
        let viewer = try await SlowViewer.connect(port: port)
        // The init segment, the cached GOP and at least one live fragment after it.
        _ = try await viewer.readMessages(atLeast: 4)
        let count = "camflow_web_delivery_seconds_count{node=\"web\",way=\"mse\"}"
        var metrics: [String: Double] = [:]
        var sent = 0
        try await waitUntil("a delivery time is recorded", timeout: .seconds(30)) {
            metrics = Self.samples((try? await rawHTTP(port: port, "/metrics").body) ?? "")
            return (metrics[count] ?? 0) > 0
        }
        let viewers = try #require(try await apiStats(port: port)["viewers"] as? [[String: Any]])
        sent = try #require(viewers.first?["sentFragments"] as? Int)
        // Counted after the write, so /api/stats read later has sent at least as many; the cached GOP is not timed.
        #expect(try #require(metrics[count]) <= Double(sent), "\(metrics[count] ?? 0) timed, \(sent) sent")
        let inf = try #require(metrics["camflow_web_delivery_seconds_bucket{node=\"web\",way=\"mse\",le=\"+Inf\"}"])
        #expect(inf == metrics[count])
        // Buckets fine enough for a share of a few milliseconds.
        for bound in ["0.00025", "0.001", "0.005", "0.01"] {
            #expect(metrics["camflow_web_delivery_seconds_bucket{node=\"web\",way=\"mse\",le=\"\(bound)\"}"] != nil, "no \(bound) s bucket")
        }
        // WebRTC's histogram is there, empty with nobody watching that way.
        #expect(metrics["camflow_web_delivery_seconds_count{node=\"web\",way=\"webrtc\"}"] == 0)
    }

    @Test func aWHEPPeerSentFrames_recordsTheirDeliveryTimes() async throws {
        let (run, port) = try await WHEPEndToEndTests().startWeb()
        defer { run.process.terminate() }
        let (status, result, output) = try await WHEPGStreamerEndToEndTests().playInGStreamer(
            "http://127.0.0.1:\(port)/whep/replay", frames: 50)
        #expect(status == 0, "\(output)")
        let metrics = Self.samples((try? await rawHTTP(port: port, "/metrics").body) ?? "")
        let timed = try #require(metrics["camflow_web_delivery_seconds_count{node=\"web\",way=\"webrtc\"}"])
        // The fixture's fragments are 1 s GOPs of 25 frames: after the cached GOP the joiner is sent (not timed) and
        // the rest of the current fragment, 50 frames hold a fragment's start. Only its first frame is timed: the
        // pacing holds the others back on purpose.
        let frames = Double(result["frames"] as? Int ?? 0)
        #expect(timed >= 1 && timed <= frames / 25 + 2, "\(timed) timed, \(frames) frames decoded")
    }
}
