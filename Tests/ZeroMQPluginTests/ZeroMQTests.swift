import Camflow
import CZeroMQ
import FilesPlugin
import Foundation
import MP4Plugin
import NIOCore
import Testing
@testable import ZeroMQPlugin

@Suite struct PacketHeaderTests {
    @Test func headerRoundTrips() throws {
        let packet = Packet(kind: .frame, stream: "cam1", sequence: 42, payload: ByteBuffer(string: "xyz"),
                            receivedAt: 7, discontinuity: true,
                            media: MediaInfo(track: 1, codec: "avc1.4D0033", timescale: 90000, dts: 1000, pts: 4000,
                                             duration: 3600, keyframe: true, width: 2560, height: 1440))
        let json = PacketHeader.json(packet)
        #expect(json == #"{"stream":"cam1","kind":"frame","sequence":42,"codec":"avc1.4D0033","timescale":90000,"dts":1000,"pts":4000,"duration":3600,"keyframe":true,"width":2560,"height":1440,"track":1,"discontinuity":true,"received_at_ns":7}"#)
        let back = try PacketHeader.packet(header: ByteBuffer(string: json), payload: packet.payload)
        #expect(back.kind == .frame && back.stream == "cam1" && back.sequence == 42 && back.discontinuity)
        #expect(back.media == packet.media)
        #expect(String(buffer: back.payload) == "xyz")
    }

    @Test func eventsKeepTheirFields() throws {
        let packet = Packet.event(Event("stats", [("fps", .double(25.5)), ("frames", .int(50)), ("codec", .string("mp4a.40.2"))]),
                                  stream: "cam1")
        let back = try PacketHeader.packet(header: ByteBuffer(string: PacketHeader.json(packet)), payload: ByteBuffer())
        #expect(back.event?.name == "stats")
        #expect(back.event?["fps"] == .double(25.5))
        #expect(back.event?["frames"] == .int(50))
        #expect(back.event?["codec"] == .string("mp4a.40.2"))
    }

    @Test func badHeaders_areRejectedWithAReason() {
        #expect(throws: PacketHeader.Invalid.self) { try PacketHeader.packet(header: ByteBuffer(string: "{"), payload: ByteBuffer()) }
        #expect(throws: PacketHeader.Invalid.self) {
            try PacketHeader.packet(header: ByteBuffer(string: #"{"stream":"a","kind":"nonsense"}"#), payload: ByteBuffer())
        }
    }

    @Test func topics_followTheTemplate() {
        let template = TopicTemplate(template: "{stream}/{kind}")
        #expect(template.topic(for: Packet(kind: .initSegment, stream: "cam1")) == "cam1/init")
        #expect(template.topic(for: .event(Event("keyframe"), stream: "cam1")) == "cam1/keyframe")
        #expect(template.topic(for: .event(Event("stats"), stream: "cam1")) == "cam1/stats")
        #expect(template.topic(for: .event(Event("connected"), stream: "cam1")) == "cam1/event")
    }
}

@Suite struct ZMQSocketTests {
    @Test func multipartMessages_zeroCopyPayloads_arriveWhole() throws {
        let publisher = try ZMQSocket(.pub)
        try publisher.bind("tcp://127.0.0.1:*")
        let subscriber = try ZMQSocket(.sub)
        try subscriber.subscribe("t/")
        try subscriber.connect(publisher.lastEndpoint)
        var big = ByteBuffer()
        big.writeRepeatingByte(0xAB, count: 200 * 1024)
        var received: [ByteBuffer]?
        let deadline = ContinuousClock.now + .seconds(20)
        // A PUB drops until the subscription has arrived: send until one gets through.
        while received == nil, ContinuousClock.now < deadline {
            try publisher.send([ByteBuffer(string: "t/x"), ByteBuffer(string: "{}"), big])
            received = try subscriber.receive(timeout: .milliseconds(50))
        }
        let parts = try #require(received)
        #expect(parts.count == 3)
        #expect(String(buffer: parts[0]) == "t/x")
        #expect(parts[2] == big)
    }

    @Test func errorsCarryErrnoAndText() {
        #expect(throws: ZMQError.self) { try ZMQSocket(.pub).bind("nonsense://x") }
        do {
            try ZMQSocket(.pub).bind("nonsense://x")
        } catch {
            #expect(error.description.hasPrefix("zmq_bind nonsense://x failed: "))
            #expect(error.errno != 0)
        }
    }

    @Test func curveIsAvailableOrRefusedClearly() {
        let spec = PipelineSpec(name: "t", nodes: [
            NodeSpec(id: "src", type: "file-replay", options: ["path": "/dev/null"]),
            NodeSpec(id: "pub", type: "zmq-publish", inputs: ["src"],
                     options: ["endpoint": "tcp://127.0.0.1:*", "curve-server": "true",
                               "curve-secret-key": "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"]),
        ])
        let registry = NodeRegistry(plugins: [FilesPlugin.self, ZeroMQPlugin.self])
        if ZMQContext.has("curve") {
            #expect(throws: Never.self) { try GraphValidator(registry: registry).validate(spec) }
        } else {
            #expect(throws: ConfigErrors.self) { try GraphValidator(registry: registry).validate(spec) }
        }
    }
}

@Suite struct PublishSubscribeTests {
    /// One process feeding another's shape: zmq-publish → zmq-subscribe in two pipelines.
    @Test func subscribeGetsBackThePacketsPublished() async throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures")
        let port = Int.random(in: 20000...60000)
        let endpoint = "tcp://127.0.0.1:\(port)"
        let harness = TestHarness(plugins: [FilesPlugin.self, MP4Plugin.self, ZeroMQPlugin.self])
        async let subscribed = harness.run([
            NodeSpec(id: "sub", type: "zmq-subscribe", options: ["endpoint": .scalar(endpoint), "topics": ["cam1/"]]),
        ], collect: ["sub"], stopWhen: { ($0["sub"] ?? []).filter { $0.kind == .frame }.count >= 75 })
        let published = try await harness.run([
            NodeSpec(id: "cam1", type: "file-replay",
                     options: ["path": .scalar(fixtures.appendingPathComponent("h264-baseline.mp4").path)]),
            NodeSpec(id: "parse", type: "mp4-parse", inputs: ["cam1"], options: ["frames": "true"]),
            NodeSpec(id: "pub", type: "zmq-publish", inputs: ["parse"],
                     options: ["endpoint": .scalar(endpoint), "wait-for-subscribers": "1", "kinds": ["init", "frame"]]),
        ], collect: [])
        #expect(published.snapshot.node("pub")?.counters.dropped == 0)
        let packets = try await subscribed.packets["sub"] ?? []
        let frames = packets.filter { $0.kind == .frame }
        #expect(packets.first?.kind == .initSegment)
        #expect(frames.count == 75)
        #expect(frames.map(\.sequence) == Array(0..<75), "in order, none lost")
        #expect(frames.first?.media?.codec == "avc1.42C00D")
        #expect(frames.first?.isKeyframe == true)
    }
}
