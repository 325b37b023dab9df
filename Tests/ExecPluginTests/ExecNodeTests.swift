import CamflowTesting
import Camflow
@testable import ExecPlugin
import FilesPlugin
import Foundation
import MP4Plugin
import NIOCore
import Testing

@Suite struct ExecNodeTests {
    let script = repositoryFile("clients/python/examples/keyframes_only.py").path
    let clip = repositoryFile("Tests/Fixtures/h264-baseline.mp4").path

    func run(_ exec: NodeSpec) async throws -> TestHarness.Run {
        try await TestHarness(plugins: [FilesPlugin.self, MP4Plugin.self, ExecPlugin.self]).run([
            NodeSpec(id: "cam", type: "file-replay", options: ["path": .scalar(clip)]),
            NodeSpec(id: "parse", type: "mp4-parse", inputs: ["cam"], options: ["emit": ["init", "frame"]]),
            exec,
        ], collect: ["keep"])
    }

    @Test func framing_roundTripsPacketsAndAcks() throws {
        let packet = Packet(kind: .frame, stream: "cam1", sequence: 3, payload: ByteBuffer(string: "nal"),
                            media: MediaInfo(track: 1, codec: "avc1.42C00D", timescale: 12800, dts: 512, keyframe: true))
        var buffer = ExecFraming.encode(packet, ackSequence: 7)
        var ack = ByteBuffer()
        ack.writeInteger(UInt32(9))
        ack.writeString(#"{"ack":7}"#)
        ack.writeInteger(UInt32(0))
        buffer.writeBuffer(&ack)
        guard case .packet(let back) = try ExecFraming.decode(&buffer) else {
            Issue.record("expected a packet")
            return
        }
        #expect(back.media == packet.media && String(buffer: back.payload) == "nal")
        guard case .ack(7) = try ExecFraming.decode(&buffer) else {
            Issue.record("expected an ack")
            return
        }
        #expect(try ExecFraming.decode(&buffer) == nil)
    }

    @Test func pythonNode_keepsKeyframesOnly() async throws {
        let result = try await run(NodeSpec(id: "keep", type: "exec", inputs: ["parse"],
                                            options: ["command": ["python3", .scalar(script)]]))
        let packets = result.packets["keep"] ?? []
        #expect(packets.filter { $0.kind == .initSegment }.count == 1)
        let frames = packets.filter { $0.kind == .frame }
        #expect(frames.count == 3)
        #expect(frames.allSatisfy { $0.isKeyframe })
    }

    @Test func childKilledMidStream_isRestarted_andLosesNothing() async throws {
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-exec-\(UUID().uuidString)").path
        let result = try await run(NodeSpec(
            id: "keep", type: "exec", inputs: ["parse"],
            restart: RestartPolicy(mode: .onFailure, maxRestarts: 2, backoff: .milliseconds(10)),
            options: ["command": ["python3", .scalar(script)],
                      "env": .list(["CAMFLOW_EXIT_AFTER=30", "CAMFLOW_MARKER=\(marker)"])]))
        #expect(FileManager.default.fileExists(atPath: marker), "the first child did exit")
        #expect(result.snapshot.node("keep")?.counters.restarts == 1)
        let frames = (result.packets["keep"] ?? []).filter { $0.kind == .frame }
        #expect(frames.count == 3, "every keyframe once, across the restart")
        #expect(Set(frames.map(\.sequence)).count == 3)
        let errors = (result.packets["keep"] ?? []).compactMap(\.event).filter { $0.name == "exec-error" }
        #expect(errors.first?["reason"]?.description.hasSuffix("exited with status 3") == true)
    }
}
