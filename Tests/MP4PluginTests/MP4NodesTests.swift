import CamflowTesting
import Camflow
import FilesPlugin
import Foundation
import ISOBMFF
import MP4Plugin
import NIOCore
import Testing

let fixtures = repositoryFile("Tests/Fixtures")

func fixturePath(_ name: String) -> OptionValue { .scalar(fixtures.appendingPathComponent(name).path) }

/// The packet kinds' sequence numbers and counts, by kind.
func count(_ packets: [Packet], _ kind: PacketKind) -> Int { packets.filter { $0.kind == kind }.count }

@Suite struct MP4ParseTests {
    let harness = TestHarness(plugins: [FilesPlugin.self, MP4Plugin.self])

    @Test(arguments: [("h264-main-aac.mp4", 150 + 283), ("h265.mp4", 75), ("h264-fragment-per-frame.mp4", 50 + 95)])
    func frames_onePerSample(_ file: String, _ samples: Int) async throws {
        let run = try await harness.run([
            NodeSpec(id: "replay", type: "file-replay", options: ["path": fixturePath(file), "chunk-size": "5000"]),
            NodeSpec(id: "parse", type: "mp4-parse", inputs: ["replay"], options: ["frames": "true"]),
        ], collect: ["parse"])
        let packets = run.packets["parse"] ?? []
        #expect(count(packets, .initSegment) == 1)
        #expect(count(packets, .event) == 0, "no parse errors: \(packets.compactMap(\.event))")
        let frames = packets.filter { $0.kind == .frame }
        #expect(frames.count == samples)
        #expect(frames.map(\.sequence) == Array(0..<UInt64(frames.count)))
        #expect(frames.allSatisfy { $0.stream == "replay" && $0.media?.codec != nil && $0.media?.dts != nil })
    }

    @Test func fragments_carryExactlyTheFileBytes() async throws {
        let run = try await harness.run([
            NodeSpec(id: "replay", type: "file-replay", options: ["path": fixturePath("h264-baseline.mp4"), "chunk-size": "777"]),
            NodeSpec(id: "parse", type: "mp4-parse", inputs: ["replay"]),
        ], collect: ["parse"])
        let packets = run.packets["parse"] ?? []
        let file = try Data(contentsOf: fixtures.appendingPathComponent("h264-baseline.mp4"))
        let initBytes = packets.first { $0.kind == .initSegment }.map { Array($0.payload.readableBytesView) } ?? []
        let fragmentBytes = packets.filter { $0.kind == .fragment }.flatMap { Array($0.payload.readableBytesView) }
        // The file is ftyp moov (moof mdat)* mfra.
        #expect(Array(file.prefix(initBytes.count)) == initBytes)
        #expect(Array(file.dropFirst(initBytes.count).prefix(fragmentBytes.count)) == fragmentBytes)
        #expect(packets.filter { $0.kind == .fragment }.map { $0.media?.keyframe } == [true, true, true])
    }

    @Test func annexb_framesStartWithAStartCode_andKeyframesWithParameterSets() async throws {
        let run = try await harness.run([
            NodeSpec(id: "replay", type: "file-replay", options: ["path": fixturePath("h264-baseline.mp4")]),
            NodeSpec(id: "parse", type: "mp4-parse", inputs: ["replay"], options: ["emit": ["frame"], "annexb": "true"]),
        ], collect: ["parse"])
        let frames = (run.packets["parse"] ?? []).filter { $0.kind == .frame }
        #expect(frames.count == 75)
        #expect(frames.allSatisfy { Array($0.payload.readableBytesView.prefix(4)) == [0, 0, 0, 1] })
        #expect(frames.filter(\.isKeyframe).allSatisfy { $0.payload.getInteger(at: $0.payload.readerIndex + 4, as: UInt8.self)! & 0x1F == 7 })
        #expect((run.packets["parse"] ?? []).allSatisfy { $0.kind == .frame }, "emit: [frame] emits frames only")
    }

    @Test func discontinuity_resynchronises_onTheNextFragment() async throws {
        // Bytes 0..<N of the file, then a gap (a chunk dropped upstream) flagged by the queue.
        let file = try Data(contentsOf: fixtures.appendingPathComponent("h264-baseline.mp4"))
        let chunk = 4000
        let packets: [Packet] = stride(from: 0, to: file.count, by: chunk).enumerated().compactMap { index, start in
            guard index != 3 else { return nil }
            return Packet(kind: .bytes, stream: "cam", sequence: UInt64(index),
                          payload: ByteBuffer(bytes: file[start..<min(start + chunk, file.count)]),
                          discontinuity: index == 4)
        }
        let run = try await TestHarness(plugins: [MP4Plugin.self], nodeTypes: [PacketSource.type(packets)]).run([
            NodeSpec(id: "src", type: "packets"),
            NodeSpec(id: "parse", type: "mp4-parse", inputs: ["src"]),
        ], collect: ["parse"])
        let out = run.packets["parse"] ?? []
        let fragments = out.filter { $0.kind == .fragment }
        #expect(out.filter { $0.kind == .event }.isEmpty, "a flagged gap is not an error: \(out.compactMap(\.event))")
        #expect(fragments.count == 2, "the fragment hit by the gap is lost, the others are found")
        #expect(fragments.first?.discontinuity == true)
    }

    @Test func garbage_becomesAParseErrorEvent_andTheStreamGoesOn() async throws {
        var file = try Data(contentsOf: fixtures.appendingPathComponent("h264-baseline.mp4"))
        let firstMoof = try #require(file.firstRange(of: Data("moof".utf8))).lowerBound - 4
        file.insert(contentsOf: [UInt8](repeating: 0xEE, count: 64), at: firstMoof)
        let packets = [Packet(kind: .bytes, stream: "cam", payload: ByteBuffer(bytes: file))]
        let run = try await TestHarness(plugins: [MP4Plugin.self], nodeTypes: [PacketSource.type(packets)]).run([
            NodeSpec(id: "src", type: "packets"),
            NodeSpec(id: "parse", type: "mp4-parse", inputs: ["src"]),
        ], collect: ["parse"])
        let out = run.packets["parse"] ?? []
        let errors = out.compactMap(\.event).filter { $0.name == "parse-error" }
        #expect(errors.count == 1)
        #expect(errors.first?["code"] == .string("invalid-box-header"))
        #expect(out.filter { $0.kind == .fragment }.count == 3)
    }
}

@Suite struct StreamBoundTests {
    @Test func streamsBeyondMaxStreams_evictTheIdlest_withAnEvent() async throws {
        let file = try Data(contentsOf: fixtures.appendingPathComponent("h264-baseline.mp4"))
        // Three streams named by whoever feeds the pipeline; the parser keeps two.
        let packets = ["a", "b", "c"].map { Packet(kind: .bytes, stream: $0, payload: ByteBuffer(bytes: file)) }
        let run = try await TestHarness(plugins: [MP4Plugin.self], nodeTypes: [PacketSource.type(packets)]).run([
            NodeSpec(id: "src", type: "packets"),
            NodeSpec(id: "parse", type: "mp4-parse", inputs: ["src"], options: ["max-streams": "2"]),
        ], collect: ["parse"])
        let events = (run.packets["parse"] ?? []).compactMap(\.event).filter { $0.name == "stream-evicted" }
        #expect(events.count == 1)
        #expect(events.first?["evicted"] == .string("a"))
        #expect(events.first?["max-streams"] == .int(2))
        #expect((run.packets["parse"] ?? []).filter { $0.kind == .fragment }.count == 9, "every stream was parsed")
    }
}

/// Emits a fixed list of packets.
struct PacketSource: Node {
    let packets: [Packet]

    static func type(_ packets: [Packet], kinds: PacketKinds = .bytes) -> NodeType {
        NodeType(name: "packets", summary: "Emits fixed packets.", accepts: [], emits: .kinds(kinds)) { _ in
            PacketSource(packets: packets)
        }
    }

    func run(_ context: NodeContext) async throws {
        for packet in packets { await context.emit(packet) }
    }
}
