import CamflowTesting
import Camflow
import FilesPlugin
import Foundation
import MP4Plugin
import NIOCore
import Testing
@testable import ZeroMQPlugin

/// zmq-publish says when a stream ends, so a subscriber's decoder gives up
/// the pictures it holds back for B-frames.
@Suite struct StreamEndedTests {
    @Test func aSubscriberSeesStreamEnded_atTheEndOfAFileReplay_afterEveryFrame() async throws {
        let fixtures = repositoryFile("Tests/Fixtures")
        let port = Int.random(in: 20000...60000)
        let endpoint = "tcp://127.0.0.1:\(port)"
        let harness = TestHarness(plugins: [FilesPlugin.self, MP4Plugin.self, ZeroMQPlugin.self])
        @Sendable func ended(_ packets: [Packet]) -> Bool { packets.contains { $0.event?.name == "stream-ended" } }
        async let subscribed = harness.run([
            NodeSpec(id: "sub", type: "zmq-subscribe", options: ["endpoint": .scalar(endpoint), "topics": ["cam1/"]]),
        ], collect: ["sub"], stopWhen: { ended($0["sub"] ?? []) })
        _ = try await harness.run([
            NodeSpec(id: "cam1", type: "file-replay",
                     options: ["path": .scalar(fixtures.appendingPathComponent("h264-high-bframes.mp4").path)]),
            NodeSpec(id: "parse", type: "mp4-parse", inputs: ["cam1"], options: ["frames": "true"]),
            // Events are not among the kinds: the end is said all the same.
            NodeSpec(id: "pub", type: "zmq-publish", inputs: ["parse"],
                     options: ["endpoint": .scalar(endpoint), "wait-for-subscribers": "1", "kinds": ["init", "frame"]]),
        ], collect: [])
        let packets = try await subscribed.packets["sub"] ?? []
        let last = try #require(packets.last)
        #expect(last.event?.name == "stream-ended" && last.stream == "cam1")
        #expect(last.event?["reason"] == .string("end of input"))
        #expect(packets.filter { $0.event?.name == "stream-ended" }.count == 1)
        #expect(packets.filter { $0.kind == .frame }.count > 0)
    }

    @Test func aCameraDisconnect_endsItsStreamOnce_andEndOfInputOnlyTheOpenOnes() {
        var ends = StreamEnds(capacity: 4)
        let frame = { (stream: String) in Packet(kind: .frame, stream: stream, sequence: 0, payload: ByteBuffer()) }
        #expect(ends.event(.event(Event("disconnected"), stream: "cam1", sequence: 3)) == nil, "no media yet: nothing to end")
        ends.published(frame("cam1"))
        ends.published(frame("cam2"))
        let ended = ends.event(.event(Event("disconnected", [("reason", .string("reset"))]), stream: "cam1", sequence: 7))
        #expect(ended?.event?.name == "stream-ended" && ended?.stream == "cam1" && ended?.sequence == 8)
        #expect(ended?.event?["reason"] == .string("disconnected"))
        #expect(ends.event(.event(Event("disconnected"), stream: "cam1", sequence: 9)) == nil, "said once")
        #expect(ends.event(.event(Event("stream-ended"), stream: "cam2", sequence: 1)) == nil, "an upstream end is passed on, not doubled")
        ends.published(frame("cam1"))  // the camera is back
        let atEnd = ends.endOfInput()
        #expect(atEnd.map(\.stream) == ["cam1"] && atEnd.first?.event?["reason"] == .string("end of input"))
        #expect(ends.endOfInput().isEmpty)
    }
}
