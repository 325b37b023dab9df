import ISOBMFF
import NIOCore
import Testing

@Suite struct NALUnitTests {
    func firstFragment(_ file: String) throws -> (InitSegment, Fragment) {
        var parser = StreamingParser()
        parser.append(try fixture(file))
        var initSegment: InitSegment?
        while let item = try parser.next() {
            switch item {
            case .initSegment(let segment): initSegment = segment
            case .fragment(let fragment): return (try #require(initSegment), fragment)
            case .skipped: continue
            }
        }
        throw ProbeError(message: "no fragment")
    }

    @Test(arguments: ["h264-main-aac.mp4", "h265.mp4", "h264-gop-change.mp4"])
    func keyframesByNALType_agreeWithTheSyncFlag(_ file: String) throws {
        var parser = StreamingParser()
        parser.append(try fixture(file))
        var initSegment: InitSegment?
        var checked = 0
        while let item = try parser.next() {
            switch item {
            case .initSegment(let segment): initSegment = segment
            case .fragment(let fragment):
                for sample in fragment.samples {
                    guard let track = initSegment?.track(sample.track), let config = track.video else { continue }
                    let summary = try config.summarize(fragment.data(of: sample))
                    #expect(summary.isKeyframe == sample.isSync, "sample at dts \(sample.dts)")
                    checked += 1
                }
            case .skipped: continue
            }
        }
        #expect(checked > 40)
    }

    @Test func h264ParameterSets_comeFromAvcC() throws {
        let (initSegment, _) = try firstFragment("h264-main-aac.mp4")
        let video = try #require(initSegment.tracks.first?.video)
        #expect(video.codec == .h264)
        #expect(video.nalLengthSize == 4)
        #expect(video.sps.count == 1 && video.pps.count == 1)
        #expect(video.sps.first?.getInteger(at: video.sps[0].readerIndex, as: UInt8.self).map { $0 & 0x1F } == 7)
    }

    @Test func h265ParameterSets_comeFromHvcC() throws {
        let (initSegment, _) = try firstFragment("h265.mp4")
        let video = try #require(initSegment.tracks.first?.video)
        #expect(video.codec == .h265)
        #expect(video.vps.count == 1 && video.sps.count == 1 && video.pps.count == 1)
    }

    @Test func annexB_putsStartCodesAndParameterSetsBeforeAKeyframe() throws {
        let (initSegment, fragment) = try firstFragment("h264-baseline.mp4")
        let video = try #require(initSegment.tracks.first?.video)
        let keyframe = try #require(fragment.samples.first)
        #expect(keyframe.isSync)
        let annexB = try video.annexB(fragment.data(of: keyframe), withParameterSets: true)
        let bytes = Array(annexB.readableBytesView)
        #expect(Array(bytes.prefix(5)) == [0, 0, 0, 1, 0x67], "SPS first")
        let spsLength = video.sps[0].readableBytes
        #expect(Array(bytes[(4 + spsLength)..<(4 + spsLength + 5)]) == [0, 0, 0, 1, 0x68], "then PPS")
        // 4-byte lengths become 4-byte start codes: the sample keeps its size.
        let parameterSets = 4 * 2 + video.sps[0].readableBytes + video.pps[0].readableBytes
        #expect(annexB.readableBytes == Int(keyframe.size) + parameterSets)
        let delta = try video.annexB(fragment.data(of: fragment.samples[1]), withParameterSets: false)
        #expect(delta.readableBytes == Int(fragment.samples[1].size))
        #expect(Array(delta.readableBytesView.prefix(4)) == [0, 0, 0, 1])
    }
}
