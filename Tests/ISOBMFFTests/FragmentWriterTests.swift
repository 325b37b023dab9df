import ISOBMFF
import NIOCore
import Testing

/// Fragments written from samples parse back to the same samples.
@Suite struct FragmentWriterTests {
    func fragments(_ name: String) throws -> (InitSegment, [Fragment]) {
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

    @Test(arguments: ["h264-main-aac.mp4", "h264-high-bframes.mp4", "h264-fragment-per-frame.mp4"])
    func writtenFragments_parseBackToTheSameSamples(_ name: String) throws {
        let (initSegment, fragments) = try fragments(name)
        for (index, fragment) in fragments.enumerated() {
            let samples = fragment.samples.map { WritableSample($0, of: fragment) }
            let bytes = try #require(FragmentWriter.fragment(sequenceNumber: UInt32(index + 7), samples: samples))
            let written = try Fragment(parsing: bytes, initSegment: initSegment)
            #expect(written.sequenceNumber == UInt32(index + 7))
            #expect(written.samples.count == fragment.samples.count)
            for (a, b) in zip(fragment.samples, written.samples) {
                #expect(a.track == b.track && a.dts == b.dts && a.pts == b.pts && a.duration == b.duration
                        && a.flags == b.flags && a.size == b.size)
                #expect(fragment.data(of: a) == written.data(of: b))
            }
        }
    }

    @Test func aCompositionOffsetBeyond32Bits_isRefused() {
        let sample = WritableSample(track: 1, dts: 0, pts: Int64(Int32.max) + 1, duration: 1, flags: 0, data: ByteBuffer())
        #expect(FragmentWriter.fragment(sequenceNumber: 1, samples: [sample]) == nil)
    }
}
