import CamflowTesting
import Foundation
import Testing

/// The `rtsp` node in the real binary, a fixture replayed live into it,
/// read by ffprobe, ffmpeg and GStreamer over TCP and UDP.
@Suite struct ServerEndToEndTests {
    @Test func h264AndAACOverTCP() async throws {
        let server = try RTSPServerProcess(fixture: "h264-main-aac.mp4")
        defer { server.stop() }
        let url = try await server.waitUntilServing()
        let probed = try await probe(url, transport: "tcp")
        #expect(probed.status == 0, "\(probed.stderr)")
        #expect(probed.streams.contains("h264,640,360,25/1"), "\(probed.streams)")
        #expect(probed.streams.contains { $0.hasPrefix("aac,") && $0.contains("48000") }, "\(probed.streams)")
        let decoded = try await decode(url, transport: "tcp")
        #expect(decoded.status == 0 && decoded.errors.isEmpty, "\(decoded.errors)")
    }

    @Test func h265OverTCP() async throws {
        let server = try RTSPServerProcess(fixture: "h265.mp4")
        defer { server.stop() }
        let url = try await server.waitUntilServing()
        let probed = try await probe(url, transport: "tcp")
        #expect(probed.status == 0, "\(probed.stderr)")
        #expect(probed.streams == ["hevc,320,240,25/1"], "\(probed.streams)")
        let decoded = try await decode(url, transport: "tcp")
        #expect(decoded.status == 0 && decoded.errors.isEmpty, "\(decoded.errors)")
    }

    @Test func h264AndAACOverUDP() async throws {
        // Reports twice a second: a player's timestamps must not jump at each one (ffmpeg over UDP says so).
        let server = try RTSPServerProcess(fixture: "h264-main-aac.mp4",
                                           options: "udp-ports: \"40000-40999\", sender-report-interval: 500ms")
        defer { server.stop() }
        let url = try await server.waitUntilServing()
        let probed = try await probe(url, transport: "udp")
        #expect(probed.status == 0, "\(probed.stderr)")
        #expect(probed.streams.contains("h264,640,360,25/1"), "\(probed.streams)")
        let decoded = try await decode(url, transport: "udp", seconds: 4)
        #expect(decoded.status == 0 && decoded.errors.isEmpty, "\(decoded.errors)")
    }

    @Test func gstreamerPlaysIt() async throws {
        let server = try RTSPServerProcess(fixture: "h264-main-aac.mp4")
        defer { server.stop() }
        let url = try await server.waitUntilServing()
        // 50 decoded buffers, then end of stream: gst-launch exits 0 only if they came (timeout's 124 otherwise).
        let result = try await runTool("/usr/bin/timeout", [
            "30", "gst-launch-1.0", "-q", "rtspsrc", "location=\(url)", "protocols=tcp", "!", "decodebin", "!",
            "identity", "eos-after=50", "!", "fakesink",
        ])
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
    }
}
