import CamflowTesting
import Foundation
import ISOBMFF
import NIOCore
import Testing

/// Init segments written from parameter sets read back through the repo's
/// parser and through ffprobe; with fragments of a fixture's samples (and
/// decode times rebuilt from presentation times alone) the file decodes.
@Suite struct InitSegmentWriterTests {
    func items(_ name: String) throws -> (InitSegment, [Fragment]) {
        var parser = StreamingParser()
        parser.append(try fixture(name))
        var initSegment: InitSegment?
        var fragments: [Fragment] = []
        while let item = try parser.next() {
            if case .initSegment(let segment) = item { initSegment = segment }
            if case .fragment(let fragment) = item { fragments.append(fragment) }
        }
        return (try #require(initSegment), fragments)
    }

    /// The tracks of `source` as writable tracks (AAC's config built from its rate and channels).
    func writableTracks(_ source: InitSegment) throws -> [WritableTrack] {
        var tracks: [WritableTrack] = []
        for track in source.tracks {
            if let video = track.video {
                tracks.append(WritableTrack(id: track.id, timescale: track.timescale, media: .video(
                    codec: video.codec, vps: video.vps, sps: video.sps, pps: video.pps,
                    width: try #require(track.width), height: try #require(track.height))))
                continue
            }
            let rate = try #require(track.sampleRate), channels = try #require(track.channels)
            let rates = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000]
            let index = try #require(rates.firstIndex(of: rate))
            let config = UInt16(2 << 11) | UInt16(index) << 7 | UInt16(channels) << 3
            tracks.append(WritableTrack(id: track.id, timescale: track.timescale, media: .aac(
                audioSpecificConfig: [UInt8(config >> 8), UInt8(config & 0xFF)], sampleRate: rate, channels: channels)))
        }
        return tracks
    }

    @Test(arguments: ["h264-main-aac.mp4", "h265.mp4"])
    func writtenInit_parsesBackWithTheSameTracks(_ name: String) throws {
        let (source, _) = try items(name)
        let bytes = try InitSegmentWriter.initSegment(tracks: try writableTracks(source))
        var parser = StreamingParser()
        parser.append(bytes)
        guard case .initSegment(let written)? = try parser.next() else {
            Issue.record("no init segment parsed back")
            return
        }
        #expect(written.isFragmented)
        #expect(written.tracks.count == source.tracks.count)
        for (a, b) in zip(source.tracks, written.tracks) {
            #expect(a.id == b.id && a.handler == b.handler && a.timescale == b.timescale)
            #expect(a.width == b.width && a.height == b.height && a.sampleRate == b.sampleRate && a.channels == b.channels)
            #expect(a.video?.parameterSets == b.video?.parameterSets)
            #expect(a.video?.nalLengthSize == b.video?.nalLengthSize)
            #expect(a.codec == b.codec, "codec string \(b.codec ?? "none"), source \(a.codec ?? "none")")
        }
    }

    /// Init + one fragment per sample, video times from presentation times only:
    /// ffmpeg decodes it without an error and ffprobe counts the source's frames.
    @Test(arguments: ["h264-main-aac.mp4", "h265.mp4", "h264-high-bframes.mp4"])
    func fileOfWrittenBoxes_decodesWithTheSourcesFrameCount(_ name: String) async throws {
        let (source, fragments) = try items(name)
        var out = try InitSegmentWriter.initSegment(tracks: try writableTracks(source))
        let videoTrack = source.tracks.first { $0.isVideo }
        let video = try #require(videoTrack).id
        var timeline = DecodeTimeline<WritableSample>()
        var written: [WritableSample] = []
        for fragment in fragments {
            for sample in fragment.samples {
                let writable = WritableSample(sample, of: fragment)
                guard sample.track == video else { written.append(writable); continue }
                for timed in timeline.push(writable, pts: sample.pts) {
                    var rebuilt = timed.frame
                    rebuilt.dts = timed.dts + 90_000
                    rebuilt.pts = timed.pts + 90_000
                    rebuilt.duration = UInt32(timed.duration)
                    written.append(rebuilt)
                }
            }
        }
        for timed in timeline.flush() {
            var rebuilt = timed.frame
            rebuilt.dts = timed.dts + 90_000
            rebuilt.pts = timed.pts + 90_000
            rebuilt.duration = UInt32(timed.duration)
            written.append(rebuilt)
        }
        #expect(timeline.lateFrames == 0)
        for (index, sample) in written.enumerated() {
            out.writeImmutableBuffer(try #require(FragmentWriter.fragment(sequenceNumber: UInt32(index + 1), samples: [sample])))
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-init-\(UUID().uuidString).mp4").path
        try Data(out.readableBytesView).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let decode = try await runTool("/usr/bin/ffmpeg", ["-v", "error", "-i", path, "-f", "null", "-"])
        #expect(decode.stderr.isEmpty, "ffmpeg: \(decode.stderr.prefix(600))")
        let sourcePath = fixturesDirectory.appendingPathComponent(name).path
        let count = ["-v", "error", "-count_frames", "-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "csv=p=0"]
        let probed = try await runTool("/usr/bin/ffprobe", count + [path]).stdout
        let expected = try await runTool("/usr/bin/ffprobe", count + [sourcePath]).stdout
        #expect(!probed.isEmpty && probed == expected)
    }

    @Test func badTracks_areRefusedWithAReason() {
        let sps = ByteBuffer(bytes: [0x67, 0x4D, 0x40, 0x0D])
        let pps = ByteBuffer(bytes: [0x68, 0xEF])
        func video(_ sps: [ByteBuffer], _ pps: [ByteBuffer], codec: VideoDecoderConfiguration.Codec = .h264,
                   width: Int = 320) -> [WritableTrack] {
            [WritableTrack(id: 1, timescale: 90_000, media: .video(codec: codec, vps: [], sps: sps, pps: pps, width: width, height: 240))]
        }
        #expect(throws: InitSegmentWriterError.noTracks) { try InitSegmentWriter.initSegment(tracks: []) }
        #expect(throws: InitSegmentWriterError.missingParameterSets("SPS")) { try InitSegmentWriter.initSegment(tracks: video([], [pps])) }
        #expect(throws: InitSegmentWriterError.missingParameterSets("PPS")) { try InitSegmentWriter.initSegment(tracks: video([sps], [])) }
        #expect(throws: InitSegmentWriterError.missingParameterSets("VPS")) {
            try InitSegmentWriter.initSegment(tracks: video([sps], [pps], codec: .h265))
        }
        #expect(throws: InitSegmentWriterError.parameterSetTooLarge(70_000)) {
            try InitSegmentWriter.initSegment(tracks: video([ByteBuffer(repeating: 0x67, count: 70_000)], [pps]))
        }
        #expect(throws: InitSegmentWriterError.tooManyParameterSets(32)) {
            try InitSegmentWriter.initSegment(tracks: video(Array(repeating: sps, count: 32), [pps]))
        }
        #expect(throws: InitSegmentWriterError.self) { try InitSegmentWriter.initSegment(tracks: video([sps], [pps], width: 0)) }
        #expect(throws: InitSegmentWriterError.self) {
            try InitSegmentWriter.initSegment(tracks: [WritableTrack(id: 2, timescale: 48_000, media: .aac(
                audioSpecificConfig: Array(repeating: 0x11, count: 65), sampleRate: 48_000, channels: 2))])
        }
        #expect(throws: InitSegmentWriterError.self) {
            try InitSegmentWriter.initSegment(tracks: [WritableTrack(id: 0, timescale: 48_000, media: .aac(
                audioSpecificConfig: [0x11, 0x90], sampleRate: 48_000, channels: 2))])
        }
    }
}
