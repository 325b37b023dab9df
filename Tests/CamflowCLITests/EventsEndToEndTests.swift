import CamflowTesting
import Foundation
import Testing

/// Camera alarms to clips and MQTT, through the binary: the simulator, a
/// real mosquitto, mosquitto_pub and mosquitto_sub, ffprobe on the clips.
@Suite(.serialized) struct EventsEndToEndTests {
    static let mac = "02CAF1000001"

    /// Runs a command to completion: status and stdout.
    private func tool(_ arguments: [String]) async throws -> (status: Int32, stdout: String) {
        let process = try CamflowProcess(Array(arguments.dropFirst()), executable: "/usr/bin/" + arguments[0])
        let status = try await process.waitForExit(timeout: .seconds(30))
        return (status, process.stdout)
    }

    /// The events of one name printed so far (the log node writes JSON lines): their fields.
    private func events(_ run: CamflowProcess, _ name: String) -> [[String: Any]] {
        run.stdout.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  object["event"] as? String == name else { return nil }
            return object["fields"] as? [String: Any]
        }
    }

    private func clips(_ run: CamflowProcess) -> [[String: Any]] { events(run, "clip") }

    /// The clip decodes without error and its first video frame is a keyframe.
    private func expectPlayable(_ path: String) async throws {
        let decode = try await tool(["ffmpeg", "-v", "error", "-i", path, "-f", "null", "-"])
        #expect(decode.status == 0, "ffmpeg could not decode \(path)")
        let frames = try await tool(["ffprobe", "-v", "error", "-select_streams", "v", "-show_frames", "-read_intervals", "%+#1",
                                     "-show_entries", "frame=key_frame", "-of", "csv=p=0", path])
        // The first field of the first line: key_frame (side data may follow).
        #expect(frames.stdout.split(separator: "\n").first?.split(separator: ",").first == "1", "first frame of \(path): \(frames.stdout)")
    }

    @Test func alarmsOverMQTTAndHTTP_makeOnePlayableClipEach_andSurviveABrokerRestart() async throws {
        try #require(MosquittoBroker.isInstalled, "needs Debian's mosquitto and mosquitto-clients")
        let broker = try await MosquittoBroker()
        let sim = try CamflowProcess(["sim", "--port", "0", "--no-auth"])
        defer { sim.process.terminate() }
        try await sim.waitForLine { $0.hasPrefix("camera 1: ") }
        let url = try #require(sim.stdout.split(separator: "\n").first { $0.hasPrefix("camera 1: ") }?.dropFirst(10))
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-events-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let pipeline = try temporaryPipeline("""
            name: events-test
            nodes:
              cam: { type: instar-camera, url: "\(url)" }
              parse: { type: mp4-parse, inputs: [cam] }
              alarms: { type: instar-alarm, mqtt: "\(broker.url)", camera: "02:ca:f1:00:00:01", stream: cam, http-bind: "127.0.0.1:0", reconnect-max: 1s }
              clips: { type: event-record, inputs: [parse, alarms], path: "\(scratch.path)/clips/{stream}/%H%M%S.mp4", pre-roll: 2s, post-roll: 2s }
              stats: { type: stats, inputs: [parse], interval: 1s }
              mqtt: { type: mqtt-publish, inputs: [cam, alarms, clips, stats], broker: "\(broker.url)", home-assistant: true, reconnect-max: 1s }
              log: { type: log, inputs: [alarms, clips, stats], format: json }
            """)
        let run = try CamflowProcess(["run", pipeline])
        defer { run.process.terminate() }
        // Media for longer than the pre-roll, and both MQTT clients connected.
        try await waitUntil("three video stats lines and two MQTT connections", timeout: .seconds(60)) {
            events(run, "stats").filter { $0["kind"] as? String == "video" }.count >= 3
                && run.stderr.components(separatedBy: "connected to MQTT broker").count > 2
        }
        let port = try #require(run.stderr.split(separator: "\n").compactMap { line -> Int? in
            guard let range = line.range(of: "alarm server listening on http://127.0.0.1:") else { return nil }
            return Int(line[range.upperBound...].prefix { $0.isNumber })
        }.first)
        let topic = "instar/\(Self.mac)/status/alarm/triggered"

        // Two overlapping alarms: one clip.
        #expect(try await tool(["mosquitto_pub", "-p", "\(broker.port)", "-t", topic, "-m", #"{"val":"1"}"#]).status == 0)
        try await waitUntil("the first alarm", timeout: .seconds(30)) { events(run, "alarm").contains { $0["source"] as? String == "area1" } }
        #expect(try await tool(["mosquitto_pub", "-p", "\(broker.port)", "-t", topic, "-m", #"{"val":"7"}"#]).status == 0)
        try await waitUntil("the first clip", timeout: .seconds(30)) { !clips(run).isEmpty }
        let first = try #require(clips(run).first)
        #expect(first["triggers"] as? Int == 2 && first["reason"] as? String == "alarm area1")
        #expect(try #require(first["pre-roll"] as? Double) >= 2, "the clip begins at least the pre-roll before the alarm")
        #expect(try #require(first["post-roll"] as? Double) >= 2, "and ends at least the post-roll after the last one")
        let firstPath = try #require(first["path"] as? String)
        try await expectPlayable(firstPath)

        // On the broker: the clip event (retained) and the Home Assistant discovery.
        let retained = try await tool(["mosquitto_sub", "-p", "\(broker.port)", "-t", "camflow/cam/clip",
                                       "-t", "homeassistant/binary_sensor/camflow_mqtt_cam/motion/config", "-C", "2", "-W", "10", "-v"])
        #expect(retained.stdout.contains("camflow/cam/clip {") && retained.stdout.contains(#""device_class":"motion""#), "\(retained.stdout)")

        // The broker goes away and comes back: both clients reconnect, and alarms still make clips.
        try await broker.stop()
        try await broker.start()
        try await waitUntil("both MQTT clients reconnect", timeout: .seconds(30)) {
            run.stderr.components(separatedBy: "connected to MQTT broker").count > 4
        }
        let answer = try await rawHTTP(port: port, "/?active=5&object=1")
        #expect(answer.status == 200, "\(answer)")
        try await waitUntil("a second clip", timeout: .seconds(30)) { clips(run).count >= 2 }
        let second = clips(run)[1]
        let secondPath = try #require(second["path"] as? String)
        #expect(second["reason"] as? String == "alarm pir" && secondPath != firstPath)
        try await expectPlayable(secondPath)
        #expect(events(run, "alarm").contains { $0["via"] as? String == "http" && $0["object"] as? String == "person" })
        let afterRestart = try await tool(["mosquitto_sub", "-p", "\(broker.port)", "-t", "camflow/cam/clip", "-C", "1", "-W", "10"])
        #expect(afterRestart.stdout.contains(secondPath), "the clip event after the restart reached the broker")

        run.process.interrupt()
        #expect(try await run.waitForExit() == 0, "\(run.stderr)")
        let index = try String(contentsOfFile: scratch.path + "/clips/index.jsonl", encoding: .utf8)
        #expect(index.split(separator: "\n").count == 2 && index.contains(#""reason":"alarm area1""#))
    }
}
