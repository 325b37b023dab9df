import InstarSimulator
import CamflowTesting
import Camflow
@testable import FilesPlugin
import Foundation
import ISOBMFF
import MP4Plugin
import NIOCore
import Testing

/// Recordings start at time 0 whatever the stream's time was: each file's
/// decode times are rebased, the index keeps the stream time.
@Suite struct RecordingTimelineTests {
    let media = try? SimulatedMedia(file: try fixtureBytes("h264-main-aac.mp4"))

    /// ffprobe's start time and duration of a file, in seconds.
    func probeTimes(_ path: String) async throws -> (start: Double, duration: Double) {
        let out = try await runTool("/usr/bin/ffprobe", ["-v", "error", "-show_entries", "format=start_time,duration", "-of", "csv=p=0", path])
        let values = out.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",").compactMap { Double($0) }
        return (values.first ?? .nan, values.dropFirst().first ?? .nan)
    }

    /// Parts of a live stream joined at its 100th pass (6.08 s each: ten minutes in).
    func midStream(_ media: SimulatedMedia, passes: Range<Int>) -> [ByteBuffer] {
        var parts = [media.initSegment]
        for loop in passes {
            for index in media.fragments.indices { parts.append(media.fragment(index, loop: loop)) }
        }
        return parts
    }

    func record(_ parts: [ByteBuffer], root: String, segment: String) async throws {
        _ = try await TestHarness(plugins: [FilesPlugin.self, MP4Plugin.self], nodeTypes: [LoopedStream.type(parts)]).run([
            NodeSpec(id: "cam", type: "stream-bytes"),
            NodeSpec(id: "parse", type: "mp4-parse", inputs: ["cam"]),
            NodeSpec(id: "record", type: "file-record", inputs: ["parse"],
                     options: ["path": .scalar(root + "/{stream}/%Y%m%d-%H%M%S.mp4"), "segment": .scalar(segment)]),
        ], collect: ["record"])
    }

    @Test func aRecordingStartedMidStream_startsAtZero_andLastsItsContent() async throws {
        let media = try #require(media)
        let root = try temporaryDirectory()
        // 30.4 s of stream from 608 s on, in 12 s files: 12.16 s, 12.16 s and 6.08 s.
        try await record(midStream(media, passes: 100..<105), root: root, segment: "12s")
        let index = try RecordingIndex.read(root: root)
        #expect(index.count == 3 && files(under: root).count == 3, "\(files(under: root))")
        for entry in index {
            let file = root + "/" + entry.path
            let times = try await probeTimes(file)
            let probe = try await probeVideo(file)
            #expect(probe.errors.isEmpty && probe.firstIsKey, "\(file): \(probe.errors)")
            #expect(abs(times.start) < 0.1, "\(file) starts at \(times.start)")
            #expect(abs(times.duration - entry.duration) < 0.2, "\(file): \(times.duration) s for \(entry.duration) s of content")
            // The index keeps where in the stream the file came from.
            #expect((entry.start ?? 0) >= 100 * media.loopSeconds - 0.01)
        }
        #expect(abs((index.first?.start ?? 0) - 100 * media.loopSeconds) < 0.01)
    }

    @Test func aStreamWhoseTimeStepsBack_beginsANewFile_eachStartingAtZero() async throws {
        let media = try #require(media)
        let root = try temporaryDirectory()
        // Ten minutes in, then the camera's clock restarts at 0 (no reconnect, no new init segment).
        let parts = midStream(media, passes: 100..<102) + Array(midStream(media, passes: 0..<2).dropFirst())
        try await record(parts, root: root, segment: "1h")
        let recorded = files(under: root)
        #expect(recorded.count == 2, "\(recorded)")
        var frames = 0
        for file in recorded {
            let times = try await probeTimes(file)
            let probe = try await probeVideo(file)
            #expect(probe.errors.isEmpty && probe.firstIsKey, "\(file): \(probe.errors)")
            #expect(abs(times.start) < 0.1 && abs(times.duration - 2 * media.loopSeconds) < 0.2, "\(file): \(times)")
            frames += probe.frames
        }
        #expect(frames == 4 * 150)
    }

    @Test func audioAndVideo_keepTheirDistance_whenRebased() throws {
        let media = try #require(media)
        let initSegment = try InitSegment(parsing: media.initSegment)
        var rebase = DecodeTimeRebase(initSegment: media.initSegment)
        for index in media.fragments.indices {
            let original = try Fragment(parsing: media.fragment(index, loop: 100), initSegment: initSegment)
            var joined = ByteBuffer()
            let pieces = rebase.rebased(media.fragment(index, loop: 100))
            for piece in try #require(pieces) { joined.writeImmutableBuffer(piece) }
            let moved = try Fragment(parsing: joined, initSegment: initSegment)
            #expect(moved.samples.map(\.size) == original.samples.map(\.size))
            #expect(Array(moved.bytes.readableBytesView.suffix(1000)) == Array(original.bytes.readableBytesView.suffix(1000)))
            for (a, b) in zip(moved.samples, original.samples) {
                let scale = Double(initSegment.track(a.track)?.timescale ?? 1)
                // Every track moved by the same 608 s, to the tick.
                #expect(abs((Double(b.dts) - Double(a.dts)) / scale - 100 * media.loopSeconds) < 2 / scale)
            }
            if index == 0 { #expect(moved.samples.map(\.dts).min() == 0) }
        }
        // Times before the file's first: refused, never wrapped.
        #expect(rebase.rebased(media.fragment(0, loop: 99)) == nil)
    }

    @Test func aFileRecoveredAfterACrash_isIndexedAtItsStreamTime() async throws {
        let media = try #require(media)
        let root = try temporaryDirectory()
        var file = try RecordingFile(path: root + "/cam1/crashed.mp4", root: root, stream: "cam1", initSegment: media.initSegment,
                                     wallStart: Date().timeIntervalSince1970)
        for index in media.fragments.indices {
            try file.append(media.fragment(index, loop: 100), time: media.start(index, loop: 100), duration: nil,
                            keyframe: true, sync: false)
        }
        // No finish: the process died here.
        let recovered = RecordingFiles.recoverPartials(under: root, log: TestHarness().logger)
        let entry = try #require(recovered.first)
        #expect(abs((entry.start ?? 0) - 100 * media.loopSeconds) < 0.01, "\(String(describing: entry.start))")
        #expect(abs((entry.end ?? 0) - 101 * media.loopSeconds) < 0.1, "\(String(describing: entry.end))")
        let times = try await probeTimes(entry.path)
        #expect(abs(times.start) < 0.1 && abs(times.duration - media.loopSeconds) < 0.2, "\(times)")
    }

    @Test func decodeTimes_hostileBoxes_areRefusedNotTrusted() {
        var moof = ByteBuffer()
        moof.writeInteger(UInt32(8 + 8 + 16))
        moof.writeString("moof")
        moof.writeInteger(UInt32(8 + 16))
        moof.writeString("traf")
        moof.writeInteger(UInt32(1000)) // a tfhd claiming more than its traf holds
        moof.writeString("tfhd")
        moof.writeRepeatingByte(0, count: 8)
        #expect(DecodeTimes.read(moof) == nil)
        #expect(DecodeTimes.rebased(moof, offset: { _ in 0 }) == nil)
    }
}
