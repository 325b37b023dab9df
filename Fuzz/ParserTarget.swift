import ISOBMFF
import NIOCore

/// The MP4 parser fed the way a stream arrives: cut into chunks whose size
/// comes from the input's first two bytes, every result pulled (errors
/// included), every video sample's NAL units walked, every init segment
/// parsed again from its bytes.
func fuzzParser(_ bytes: UnsafeRawBufferPointer) {
    guard bytes.count > 2 else { return }
    let chunk = Int(bytes[0]) << 8 | Int(bytes[1]) + 1
    var input = ByteBuffer(bytes: bytes.dropFirst(2))
    // Small limits, so the fuzzer reaches them with small inputs.
    var parser = StreamingParser(configuration: .init(maxBoxSize: 1 << 16, maxSamplesPerFragment: 256, maxTracks: 4))
    while input.readableBytes > 0 {
        guard let slice = input.readSlice(length: min(chunk, input.readableBytes)) else { break }
        parser.append(slice)
        while true {
            do {
                guard let item = try parser.next() else { break }
                if case .fragment(let fragment) = item, let initSegment = parser.initSegment {
                    for sample in fragment.samples {
                        guard let video = initSegment.track(sample.track)?.video else { continue }
                        let data = fragment.data(of: sample)
                        _ = try? video.summarize(data)
                        _ = try? video.annexB(data, withParameterSets: sample.isSync)
                        _ = video.summarizeAnnexB(data)
                        _ = try? video.sequenceParameterSets(decoding: data)
                    }
                    _ = fragment.rewritingTimes(sequenceShift: 1) { _ in 1 }
                }
                if case .initSegment(let segment) = item { _ = try? InitSegment(parsing: segment.bytes) }
            } catch {
                _ = error.description
            }
        }
        // The bound the parser promises: the box in flight and the chunk it came with.
        precondition(parser.retainedBytes <= 2 * (1 << 16) + 2 * chunk + 64,
                     "the parser holds \(parser.retainedBytes) bytes")
    }
    _ = try? parser.finish()
}
