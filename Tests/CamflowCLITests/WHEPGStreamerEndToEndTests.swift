import CamflowTesting
import Foundation
import Testing

/// WHEP played by a second, independent WebRTC stack: GStreamer's webrtcbin
/// (libnice full ICE, controlling; DTLS client) through
/// Tests/Peers/whep_gst_client.py, against the real binary's web sink.
@Suite struct WHEPGStreamerEndToEndTests {
    /// The sink's start and its WHEP requests, shared with the Chromium tests.
    let web = WHEPEndToEndTests()

    /// Runs the webrtcbin peer on `url` and returns its JSON line and exit status.
    func playInGStreamer(_ url: String, frames: Int, arguments: [String] = [],
                         environment: [String: String] = [:]) async throws -> (status: Int32, result: [String: Any], output: String) {
        let script = repositoryRoot.appendingPathComponent("Tests/Peers/whep_gst_client.py").path
        // The offer goes before webrtcbin's gathering completes: camflow takes the peer's address from
        // its checks, and gathering once took 14 s in a loaded parallel run (0.3-0.7 s otherwise).
        let peer = try CamflowProcess([script, url, "--frames", "\(frames)", "--timeout", "20", "--early-offer"] + arguments,
                                      environment: environment, executable: "/usr/bin/python3")
        let status = try await peer.waitForExit(timeout: .seconds(30))
        let result = try #require(try JSONSerialization.jsonObject(with: Data(peer.stdout.utf8)) as? [String: Any],
                                  "\(peer.stdout) \(peer.stderr)")
        return (status, result, peer.stdout + peer.stderr)
    }

    @Test func gstreamerWebrtcbin_decodesTheStream_overWHEP() async throws {
        let (run, port) = try await web.startWeb()
        defer { run.process.terminate() }
        let (status, result, output) = try await playInGStreamer("http://127.0.0.1:\(port)/whep/replay", frames: 25)
        #expect(status == 0, "\(output)")
        #expect(result["status"] as? Int == 201, "\(result)")
        #expect(result["error"] is NSNull, "\(result)")
        #expect(result["frames"] as? Int ?? 0 >= 25, "\(result)")
        // The fixture is 320x240.
        #expect(result["width"] as? Int == 320 && result["height"] as? Int == 240, "\(result)")
        #expect(result["dtlsState"] as? String == "connected", "\(result)")
        #expect(["connected", "completed"].contains(result["iceConnectionState"] as? String ?? ""), "\(result)")
        #expect(result["packetsLost"] as? Int ?? 1 <= 2, "\(result)")
        #expect(result["deleteStatus"] as? Int == 200, "\(result)")
        #expect(run.stderr.contains("DTLS fingerprint matches the offer's"), "\(run.stderr)")
        #expect(run.stderr.contains("closed: DELETE"), "\(run.stderr)")
        let location = try #require((result["location"] as? String).flatMap { URL(string: $0)?.path })
        #expect(location.hasPrefix("/whep/replay/"), "\(location)")
        #expect(try await web.whepRequest(port: port, method: "DELETE", location).status == 404)
    }

    @Test func gstreamerWebrtcbin_behindTheSinksCredentials_neverShowsThePassword() async throws {
        let authorization = "Basic " + Data("viewer:s3cret-pw".utf8).base64EncodedString()
        let (run, port) = try await web.startWeb(webOptions: ", username: viewer, password: s3cret-pw", authorization: authorization)
        defer { run.process.terminate() }
        let url = "http://127.0.0.1:\(port)/whep/replay"
        let refused = try await playInGStreamer(url, frames: 10, arguments: ["--user", "viewer"],
                                                environment: ["WHEP_PASSWORD": "wrong-pw"])
        #expect(refused.status == 1)
        #expect(refused.result["status"] as? Int == 401, "\(refused.result)")
        #expect(!refused.output.contains("wrong-pw"))
        let played = try await playInGStreamer(url, frames: 10, arguments: ["--user", "viewer"],
                                               environment: ["WHEP_PASSWORD": "s3cret-pw"])
        #expect(played.status == 0, "\(played.output)")
        #expect(played.result["frames"] as? Int ?? 0 >= 10, "\(played.result)")
        #expect(played.result["width"] as? Int == 320, "\(played.result)")
        #expect(played.result["deleteStatus"] as? Int == 200, "\(played.result)")
        #expect(!played.output.contains("s3cret-pw"))
    }
}
