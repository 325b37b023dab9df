import CamflowTesting
import Camflow
import ChildIO
@testable import ExecPlugin
import FilesPlugin
import Foundation
#if canImport(Glibc)
import Glibc
#endif
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

    /// Megabytes through a child that echoes them (`cat`): every byte back,
    /// in order, packets whole however the pipe cut them.
    @Test func aChildsLargeOutput_isReadWithoutLoss() async throws {
        let count = 24, size = (1 << 20) + 3
        let pool = ByteBuffer(bytes: (0..<(size + count * 4099)).map { _ in UInt8.random(in: 0...255) })
        let expected = (0..<count).map { pool.getSlice(at: $0 * 4099, length: size)! }
        let source = NodeType(name: "test-large-packets", summary: "test source", accepts: [], emits: .kinds(.bytes)) { options in
            LargePackets(payloads: expected, stream: options.nodeID)
        }
        let result = try await TestHarness(plugins: [ExecPlugin.self], nodeTypes: [source]).run([
            NodeSpec(id: "large", type: "test-large-packets"),
            // `cat` acknowledges nothing: room for all of it.
            NodeSpec(id: "echo", type: "exec", inputs: ["large"],
                     options: ["command": ["cat"], "max-unacked": "100000", "max-unacked-bytes": "1GiB"]),
        ], collect: ["echo"])
        let packets = result.packets["echo"] ?? []
        #expect(packets.map(\.sequence) == (0..<UInt64(count)).map { $0 })
        #expect(packets.map(\.payload) == expected, "payloads differ")
    }

    /// Stopping a child that ignores SIGTERM: it has 'stop-timeout' on the
    /// pipeline's clock, and is killed (with its process group) when that
    /// has passed, not before.
    @Test func aChildIgnoringSIGTERM_hasItsStopTimeout_onThePipelinesClock_thenIsKilled() async throws {
        let pidFile = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-exec-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: pidFile) }
        let harness = TestHarness(plugins: [FilesPlugin.self, MP4Plugin.self, ExecPlugin.self])
        let graph = try GraphValidator(registry: harness.registry).validate(PipelineSpec(name: "stop", nodes: [
            NodeSpec(id: "cam", type: "file-replay", options: ["path": .scalar(clip)]),
            NodeSpec(id: "child", type: "exec", inputs: ["cam"], options: [
                "command": ["/bin/sh", "-c", .scalar("trap '' TERM; cat > /dev/null; echo $$ > '\(pidFile).tmp'; mv '\(pidFile).tmp' '\(pidFile)'; exec sleep 600")],
                "stop-timeout": "30s", "max-unacked": "100000", "max-unacked-bytes": "1GiB"]),
        ]))
        let clock = ManualClock()
        let pipeline = Pipeline(graph: graph, logger: harness.logger, metricsInterval: nil, clock: clock)
        let run = Task { try await pipeline.run() }
        try await waitUntil("the child read its input and sleeps", timeout: .seconds(20)) {
            FileManager.default.fileExists(atPath: pidFile)
        }
        let pid = try #require(Int32(String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        defer { kill(pid, SIGKILL) }
        run.cancel()
        // The stop waits on the pipeline's clock, which stands still: the child lives on.
        try await clock.waitForSleepers(1, timeout: .seconds(10))
        #expect(kill(pid, 0) == 0, "the child was killed before its stop-timeout")
        let advanced = ContinuousClock.now
        await clock.advance(by: .seconds(30))
        try await waitUntil("the child is killed and reaped", timeout: .seconds(10)) { kill(pid, 0) != 0 }
        _ = try? await run.value
        #expect(ContinuousClock.now - advanced < .seconds(5))
    }
}

/// A source of fixed payloads.
private struct LargePackets: Node {
    let payloads: [ByteBuffer]
    let stream: String

    func run(_ context: NodeContext) async throws {
        for (sequence, payload) in payloads.enumerated() {
            await context.emit(Packet(kind: .bytes, stream: stream, sequence: UInt64(sequence), payload: payload))
        }
    }
}

/// The exec node's pipes to its child, on NIO.
@Suite struct ChildPipeTests {
    /// A child gone is an error of the write that finds it gone (EPIPE, the
    /// channel closed), never a SIGPIPE that kills camflow: the test binary
    /// does not ignore SIGPIPE itself.
    @Test func aWriteToAChildThatWent_isAnError_notASignal() async throws {
        let process = try ChildProcess(executable: "/bin/sh", arguments: ["-c", "exec 0<&-"], environment: [:])
        let pipes = try await ChildPipes.open(process)
        defer { pipes.stdin.close(promise: nil) }
        _ = await process.termination()
        let packet = Packet(kind: .bytes, stream: "s", sequence: 0, payload: ByteBuffer(repeating: 1, count: 200_000))
        var said = "written"
        do {
            let input = ChildInput(pipes.stdin)
            for sequence in 0..<4 {
                try await input.write(packet, ackSequence: UInt64(sequence))
            }
            try await input.drain()
        } catch {
            said = "\(error)"
        }
        #expect(said.contains("the child stopped reading"), "\(said)")
        try? await pipes.stdout.channel.close()
        try? await pipes.stderr.channel.close()
    }

    /// The packet path's pipes hold a megabyte (a packet crosses in one
    /// write and one read), within a quota of children; stderr's stays small.
    @Test func largePipes_holdAMegabyte_forAQuotaOfChildren() async throws {
        let process = try ChildProcess(executable: "/bin/cat", arguments: [], environment: [:])
        let pipes = try await ChildPipes.open(process, largePipes: true)
        // F_GETPIPE_SZ, while the channels hold the descriptors open.
        #expect(fcntl(process.stdin, 1032) == Int32(ChildPipes.packetPipeSize))
        #expect(fcntl(process.stdout, 1032) == Int32(ChildPipes.packetPipeSize))
        #expect(fcntl(process.stderr, 1032) < Int32(ChildPipes.packetPipeSize))
        try await pipes.stdin.close()
        try? await pipes.stdout.channel.close()
        try? await pipes.stderr.channel.close()
        _ = await process.termination()
        let quota = ChildPipes.Quota(limit: 2)
        #expect([quota.take(), quota.take(), quota.take()] == [true, true, false])
        quota.giveBack()
        #expect(quota.take())
    }

    /// Messages come out whole however the pipe cut them; one inside a
    /// single read is a slice of that read's buffer, not a copy.
    @Test func framesCutAnywhere_comeOutWhole_andOnesInsideARead_areNotCopied() throws {
        let payloads = [ByteBuffer(repeating: 7, count: 3), ByteBuffer(), ByteBuffer(bytes: (0..<5000).map { UInt8($0 % 251) }),
                        ByteBuffer(string: "end")]
        var stream = ByteBuffer()
        for (sequence, payload) in payloads.enumerated() {
            var framed = ExecFraming.encode(Packet(kind: .bytes, stream: "s", sequence: UInt64(sequence), payload: payload),
                                            ackSequence: UInt64(sequence))
            stream.writeBuffer(&framed)
        }
        for cut in [1, 2, 5, 9, 64, 1000, 4099, stream.readableBytes] {
            var reader = ExecFrameReader()
            var back: [ByteBuffer] = []
            var rest = stream
            while rest.readableBytes > 0 {
                reader.add(rest.readSlice(length: min(cut, rest.readableBytes))!)
                while let message = try reader.next() {
                    if case .packet(let packet) = message { back.append(packet.payload) }
                }
            }
            #expect(back == payloads, "cut every \(cut) bytes")
            #expect(!reader.isInsideMessage)
        }
        // All in one read: every payload points into that read's bytes.
        var reader = ExecFrameReader()
        reader.add(stream)
        let range = stream.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress)..<(UInt(bitPattern: $0.baseAddress) + UInt($0.count)) }
        while let message = try reader.next() {
            guard case .packet(let packet) = message, packet.payload.readableBytes > 0 else { continue }
            let start = packet.payload.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
            #expect(range.contains(start), "payload \(packet.sequence) was copied")
        }
    }

    @Test func aHugeDeclaredLength_reservesOnlyWhatArrivedAndAPipesWorth() throws {
        // A 16-byte header and a payload length saying 200 MiB follow; 28 bytes came.
        var bytes = ByteBuffer()
        bytes.writeInteger(UInt32(16))
        bytes.writeBytes([UInt8](repeating: 0x7B, count: 16))
        bytes.writeInteger(UInt32(200 << 20))
        bytes.writeBytes([1, 2, 3, 4])
        var reader = ExecFrameReader(maxSize: 256 << 20)
        reader.add(bytes)
        #expect(try reader.next() == nil)
        #expect(reader.isInsideMessage)
        // What arrived and a pipe's worth, as NIO rounds it (a power of two), not the 200 MiB announced.
        #expect(reader.partial.capacity <= 2 << 20, "reserved \(reader.partial.capacity) bytes")
    }
}
