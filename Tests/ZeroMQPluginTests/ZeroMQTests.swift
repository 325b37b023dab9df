import CamflowTesting
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

    /// Each header names what is wrong with it: type, range, size.
    @Test(arguments: [
        (#"{"stream":"a","kind":"frame","duration":9223372036854775807}"#, "the header's 'duration' is 9223372036854775807, outside 0...1099511627776"),
        (#"{"stream":"a","kind":"frame","duration":-1}"#, "the header's 'duration' is -1, outside 0...1099511627776"),
        (#"{"stream":"a","kind":"frame","dts":1e300}"#, "the header's 'dts' must be a whole number that fits 64 bits"),
        (#"{"stream":"a","kind":"frame","dts":1.5}"#, "the header's 'dts' must be a whole number that fits 64 bits"),
        (#"{"stream":"a","kind":"frame","dts":true}"#, "the header's 'dts' must be a whole number that fits 64 bits"),
        (#"{"stream":"a","kind":"frame","dts":"12"}"#, "the header's 'dts' must be a whole number that fits 64 bits"),
        (#"{"stream":"a","kind":"frame","timescale":4294967296}"#, "the header's 'timescale' is 4294967296, outside 0...4294967295"),
        (#"{"stream":"a","kind":"frame","width":-5,"codec":"x"}"#, "the header's 'width' is -5, outside 0...65535"),
        (#"{"stream":"a","kind":"frame","keyframe":1}"#, "the header's 'keyframe' must be true or false"),
        (#"{"stream":"a\nforged log line","kind":"frame"}"#, "the header's 'stream' must be 1 to 256 bytes without control characters"),
        (#"{"stream":"","kind":"frame"}"#, "the header's 'stream' must be 1 to 256 bytes without control characters"),
        (#"{"stream":7,"kind":"frame"}"#, "the header's 'stream' must be a string"),
        (#"{"kind":"frame"}"#, "the header has no 'stream'"),
        (#"[1,2]"#, "the header is not a JSON object"),
        (#"{"stream":"a","kind":"\u001b[31mred"}"#, "the header's 'kind' is '\\u{1B}[31mred', not one of init, fragment, frame, event, bytes"),
    ])
    func hostileHeaders_areRefused_withTheReason(_ header: String, _ reason: String) {
        #expect(throws: PacketHeader.Invalid.self) {
            do {
                _ = try PacketHeader.packet(header: ByteBuffer(string: header), payload: ByteBuffer())
            } catch {
                #expect("\(error)" == reason)
                throw error
            }
        }
    }

    @Test func hugeHeadersAndLongNames_areRefused() {
        let long = String(repeating: "x", count: 257)
        #expect(throws: PacketHeader.Invalid.self) {
            try PacketHeader.packet(header: ByteBuffer(string: #"{"stream":"\#(long)","kind":"frame"}"#), payload: ByteBuffer())
        }
        let padded = #"{"stream":"a","kind":"frame","pad":""# + String(repeating: " ", count: 70_000) + #""}"#
        #expect(throws: PacketHeader.Invalid.self) {
            try PacketHeader.packet(header: ByteBuffer(string: padded), payload: ByteBuffer())
        }
        let manyFields = (0..<300).map { #""f\#($0)":\#($0)"# }.joined(separator: ",")
        #expect(throws: PacketHeader.Invalid.self) {
            try PacketHeader.packet(header: ByteBuffer(string: #"{"stream":"a","kind":"event","event":"e","fields":{\#(manyFields)}}"#),
                                    payload: ByteBuffer())
        }
    }

    /// Found by the header fuzzer: an accepted header, written again, reads back the same.
    @Test func zeroTimescaleAndTrackAlone_carryNoMedia_soTheHeaderRoundTrips() throws {
        let header = #"{"stream":"cam1","kind":"frame","sequence":42,"timescale":0,"track":0,"received_at_ns":7}"#
        let packet = try PacketHeader.packet(header: ByteBuffer(string: header), payload: ByteBuffer())
        #expect(packet.media == nil)
        let again = try PacketHeader.packet(header: ByteBuffer(string: PacketHeader.json(packet)), payload: ByteBuffer())
        #expect(again.media == packet.media && again.stream == packet.stream && again.sequence == packet.sequence)
    }

    @Test func extremeButValidValues_arePassedExactly() throws {
        let header = #"{"stream":"a","kind":"frame","dts":-9223372036854775808,"pts":9223372036854775807,"timescale":4294967295,"sequence":-1,"track":4294967295}"#
        let packet = try PacketHeader.packet(header: ByteBuffer(string: header), payload: ByteBuffer())
        #expect(packet.media?.dts == .min)
        #expect(packet.media?.pts == .max)
        #expect(packet.media?.timescale == .max)
        #expect(packet.media?.track == .max)
        #expect(packet.sequence == .max)
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
    @Test func multipartMessages_zeroCopyPayloads_arriveWhole() async throws {
        var big = ByteBuffer()
        big.writeRepeatingByte(0xAB, count: 200 * 1024)
        // The sockets wait on a thread of their own, not on one of the shared pool's.
        let received = try await BlockingIOThread.run(name: "test-zmq") { () throws -> [ByteBuffer]? in
            let publisher = try ZMQSocket(.xpub)
            try publisher.bind("tcp://127.0.0.1:*")
            let subscriber = try ZMQSocket(.sub)
            try subscriber.subscribe("t/")
            try subscriber.connect(publisher.lastEndpoint)
            // An XPUB hears the subscription (the connecting SUB queued it at once): from then on nothing is
            // dropped for this subscriber.
            guard try publisher.receive(timeout: .seconds(20)) != nil else { return nil }
            try publisher.send([ByteBuffer(string: "t/x"), ByteBuffer(string: "{}"), big])
            return try subscriber.receive(timeout: .seconds(20))
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

    @Test func keyFiles_holdKeysWithEveryZ85Character() throws {
        // '#' and '=' are Z85 characters: keys holding them must survive the comment and name rules.
        var pair = try CurveKey.keypair()
        while !(pair.secretKey + pair.publicKey).contains("#") || !pair.publicKey.contains("=") { pair = try CurveKey.keypair() }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("keys-\(UUID().uuidString)").path
        try "# a comment\npublic-key = \"\(pair.publicKey)\"\n  secret-key = \"\(pair.secretKey)\"\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try CurveKey.keys(inFile: path, kind: "secret-key") == [pair.secretKey])
        #expect(try CurveKey.keys(inFile: path, kind: "public-key") == [pair.publicKey])
        #expect(CurveKey.publicKey(ofSecret: pair.secretKey) == pair.publicKey)
        try "\(pair.publicKey)\n  # another\n\(pair.publicKey)\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try CurveKey.keys(inFile: path, kind: "public-key") == [pair.publicKey, pair.publicKey], "bare keys")
        try "not a key\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: CurveKeyError.self) { try CurveKey.keys(inFile: path) }
    }

    @Test func curveIsAvailableOrRefusedClearly() {
        let spec = PipelineSpec(name: "t", nodes: [
            NodeSpec(id: "src", type: "file-replay", options: ["path": "/dev/null"]),
            NodeSpec(id: "pub", type: "zmq-publish", inputs: ["src"],
                     options: ["endpoint": "tcp://127.0.0.1:*", "curve-server": "true",
                               "curve-secret-key": "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs",
                               "allowed-client-keys": ["Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"]]),
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
        let fixtures = repositoryFile("Tests/Fixtures")
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

@Suite struct SlowAndBrokenPeersTests {
    /// A subscriber that never reads must not hold the pipeline: PUB drops and counts.
    @Test func stuckSubscriber_neverBlocksThePipeline() async throws {
        let stuck = try ZMQSocket(.sub)
        try stuck.set(ZMQ_RCVHWM, 1)
        try stuck.set(ZMQ_RCVBUF, 4096)
        try stuck.subscribe("")
        try stuck.bind("tcp://127.0.0.1:*")
        let endpoint = stuck.lastEndpoint
        // The socket is the thread's until it ends. A bound SUB sends its subscription to a peer only as it
        // is used: a wait in zmq_poll uses it until the first message is there, and then it reads nothing.
        nonisolated(unsafe) let idle = stuck
        async let reached: Bool = BlockingIOThread.run(name: "test-stuck") { try idle.poll(timeout: .seconds(30)) }
        let source = NodeType(name: "big-frames", summary: "", accepts: [], emits: .kinds(.frame)) { _ in
            ClosureNode { context in
                var payload = ByteBuffer()
                payload.writeRepeatingByte(1, count: 200 * 1024)
                for index in 0..<2000 {
                    await context.emit(Packet(kind: .frame, stream: "cam1", sequence: UInt64(index), payload: payload))
                }
            }
        }
        let run = try await TestHarness(plugins: [ZeroMQPlugin.self], nodeTypes: [source]).run([
            NodeSpec(id: "src", type: "big-frames"),
            NodeSpec(id: "pub", type: "zmq-publish", inputs: ["src"], options: [
                "endpoint": .scalar(endpoint), "connect": "true", "sndhwm": "2", "linger": "0s",
                "latch": "false", "wait-for-subscribers": "1",
            ]),
        ], collect: [])
        let counters = try #require(run.snapshot.node("pub")?.counters)
        #expect(counters.packetsIn == 2000, "the pipeline ran to the end")
        #expect(try await reached, "the subscription went out and a message came")
        // What reached the stuck subscriber is what its queues hold: libzmq dropped the rest for it.
        let delivered = try await BlockingIOThread.run(name: "test-stuck") { () throws -> Int in
            var delivered = 0
            while (try idle.receive(timeout: .milliseconds(200))) != nil { delivered += 1 }
            idle.close()
            return delivered
        }
        #expect(delivered < 200, "\(delivered) of 2000 reached the stuck subscriber")
    }

    @Test func malformedMessages_becomeEvents_andAreSkipped() async throws {
        let publisher = try ZMQSocket(.xpub)
        try publisher.bind("tcp://127.0.0.1:*")
        let endpoint = publisher.lastEndpoint
        nonisolated(unsafe) let sender = publisher
        let good = Packet(kind: .frame, stream: "cam1", sequence: 9, payload: ByteBuffer(string: "ok"))
        // Once the subscription is here nothing is dropped for the subscriber: each message goes once.
        let sending = Task {
            try await BlockingIOThread.run(name: "test-xpub") {
                guard try sender.receive(timeout: .seconds(20)) != nil else { return }
                try sender.send([ByteBuffer(string: "cam1/frame"), ByteBuffer(string: "{}")])
                try sender.send([ByteBuffer(string: "cam1/frame"), ByteBuffer(string: "not json"), ByteBuffer()])
                try sender.send([ByteBuffer(string: "cam1/frame"), ByteBuffer(string: PacketHeader.json(good)), good.payload])
            }
        }
        @Sendable func reasons(_ packets: [Packet]) -> [String] {
            packets.compactMap(\.event).filter { $0.name == "zmq-error" }.compactMap { $0["reason"]?.description }
        }
        let run = try await TestHarness(plugins: [ZeroMQPlugin.self]).run([
            NodeSpec(id: "sub", type: "zmq-subscribe", options: ["endpoint": .scalar(endpoint)]),
        ], collect: ["sub"], stopWhen: { collected in
            let packets = collected["sub"] ?? []
            let seen = reasons(packets)
            return seen.contains { $0.hasPrefix("expected 3 frames") } && seen.contains { $0.hasPrefix("the header is not") }
                && packets.contains { $0.kind == .frame }
        })
        try await sending.value
        publisher.close()
        let packets = run.packets["sub"] ?? []
        #expect(reasons(packets).contains { $0.hasPrefix("expected 3 frames (topic, header, payload), got 2") })
        #expect(reasons(packets).contains { $0.hasPrefix("the header is not a JSON object") })
        #expect(packets.filter { $0.kind == .frame }.allSatisfy { $0.sequence == 9 && String(buffer: $0.payload) == "ok" })
    }
}

/// A node whose run is a closure.
struct ClosureNode: Node {
    let body: @Sendable (NodeContext) async throws -> Void
    func run(_ context: NodeContext) async throws { try await body(context) }
}
