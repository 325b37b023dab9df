import CamflowTesting
import Foundation
import Testing

/// The RTSP server against hostile clients, continued: UDP, RTCP, unread answers,
/// wrong passwords and bad options (the script and its runner are in ServerHostileTests.swift).
extension ServerHostileTests {
    @Test func aFullUDPRangeFallsBackToTCPOr461() async throws {
        // Server port ranges in these tests lie below Linux's ephemeral range (32768-60999),
        // so no socket another test opens meanwhile can take them.
        let server = try RTSPServerProcess(fixture: "h265.mp4", options: "udp-ports: \"23532-23533\"")
        defer { server.stop() }
        _ = try await server.waitUntilServing()
        let out = try await Self.run("udpfull", port: server.port)
        #expect(out["first"] as? String == "RTSP/1.0 200 OK", "\(out)")
        #expect((out["firstTransport"] as? [String])?.first?.contains("server_port=23532-23533") == true, "\(out)")
        #expect(out["both"] as? String == "RTSP/1.0 200 OK", "\(out)")
        #expect((out["bothTransport"] as? [String])?.first?.contains("RTP/AVP/TCP;unicast;interleaved=0-1") == true, "\(out)")
        #expect(out["udpOnly"] as? String == "RTSP/1.0 461 Unsupported Transport", "\(out)")
        let ffprobe = try #require(out["ffprobe"] as? [Any], "\(out)")
        #expect(ffprobe.first as? Int == 0 && ffprobe.dropFirst().first as? String == "hevc", "\(out)")
    }

    @Test func udpClientsArePacedAndWhatTheySendIsIgnored() async throws {
        let server = try RTSPServerProcess(fixture: "h264-main-aac.mp4",
                                           options: "udp-ports: \"25000-25999\", udp-join-rate: 64KiB, sender-report-interval: 500ms")
        defer { server.stop() }
        _ = try await server.waitUntilServing()
        let out = try await Self.run("udp", port: server.port)
        #expect(out["setup"] as? String == "RTSP/1.0 200 OK" && out["play"] as? String == "RTSP/1.0 200 OK")
        // The joiner's GOP (tens of KiB at once in the cache) comes paced: a burst would take milliseconds.
        let seconds = try #require(out["first40KBSeconds"] as? Double, "\(out)")
        #expect(seconds > 0.08, "\(out)")
        #expect(out["rtcpType"] as? Int == 200, "a sender report on the RTCP port")
        let ntp = try #require(out["rtcpNTPSeconds"] as? Int), now = try #require(out["now"] as? Double)
        #expect(abs(Double(ntp) - now) < 5)
        #expect(out["optionsAfter"] as? String == "RTSP/1.0 200 OK")
    }

    @Test func senderReportsComeOnTheInterleavedRTCPChannel() async throws {
        let server = try RTSPServerProcess(fixture: "h265.mp4", options: "sender-report-interval: 500ms")
        defer { server.stop() }
        _ = try await server.waitUntilServing()
        let out = try await Self.run("rtcp", port: server.port)
        #expect(out["play"] as? String == "RTSP/1.0 200 OK")
        #expect(out["channels"] as? [Int] == [4, 5], "RTP on the client's channel 4, RTCP on 5: \(out)")
        let report = try #require(out["report"] as? [String: Any], "\(out)")
        let ntp = try #require(report["ntp"] as? Int), now = try #require(report["now"] as? Double)
        #expect(abs(Double(ntp) - now) < 5)
    }

    @Test func aClientThatSendsRequestsButReadsNoAnswersIsNotRead() async throws {
        let server = try RTSPServerProcess(fixture: "h265.mp4")
        defer { server.stop() }
        _ = try await server.waitUntilServing()
        let out = try await Self.run("pipelined", port: server.port)
        // 400,000 OPTIONS (22 MB) without reading an answer: the server stops reading once its answers pile up,
        // so the client's sends block (kernel buffers full) long before the end.
        let sent = try #require(out["sentRequests"] as? Int), total = try #require(out["totalRequests"] as? Int)
        #expect(sent < total / 2, "\(out)")
        #expect(out["othersServed"] as? String == "RTSP/1.0 200 OK")
    }

    @Test func tenWrongPasswordsLockTheAddressOut() async throws {
        let server = try RTSPServerProcess(fixture: "h265.mp4", options: "username: viewer, password: s3cret")
        defer { server.stop() }
        _ = try await server.waitUntilServing()
        let out = try await Self.run("guess", port: server.port)
        #expect(out["guesses"] as? [String] == ["RTSP/1.0 401 Unauthorized"])
        #expect(out["rightAfterGuesses"] as? String == "RTSP/1.0 403 Forbidden", "\(out)")
        #expect(server.stderr.contains("sent wrong credentials 10 times"))
    }

    @Test(arguments: [("udp-ports: \"20001-20000\"", "expected FIRST-LAST"), ("username: x", "'username' and 'password' go together"),
                      ("bind: \"nowhere\"", "expected HOST:PORT"), ("client-queue: 1KiB", "client-queue")])
    func badOptionsAreSaidWithWhere(option: String, message: String) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-rtsp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("pipeline.yaml")
        try """
            name: v
            nodes:
              cam1: { type: file-replay, path: x.mp4 }
              parse: { type: mp4-parse, inputs: [cam1] }
              rtsp: { type: rtsp, inputs: [parse], \(option) }
            """.write(to: file, atomically: true, encoding: .utf8)
        let result = try await runTool(camflowTestBinary, ["validate", file.path])
        #expect(result.status != 0)
        #expect(result.stderr.contains(message) && result.stderr.contains("pipeline.yaml:5:"), "\(result.stderr)")
    }
}
