import ISOBMFF
import NIOCore
import Testing

/// However the stream is cut, the parser gives the same result.
@Suite struct ChunkingTests {
    static let files = ["h264-main-aac.mp4", "h265.mp4", "h264-fragment-per-frame.mp4", "h264-high-bframes.mp4"]

    @Test(arguments: files)
    func randomCuts_giveIdenticalResults(_ file: String) throws {
        let bytes = try fixture(file)
        let whole = parse(bytes, cuts: [bytes.readableBytes])
        #expect(whole.errors.isEmpty)
        #expect(!whole.samples.isEmpty)
        var generator = SplitMix64(seed: UInt64(file.utf8.count) &* 7919)
        for _ in 0..<20 {
            let cuts = (0..<64).map { _ in Int(generator.next() % 3000) + 1 }
            #expect(parse(bytes, cuts: cuts) == whole, "cuts \(cuts.prefix(8))...")
        }
    }

    @Test func oneByteChunks_giveIdenticalResults() throws {
        let bytes = try fixture("h264-baseline.mp4")
        #expect(parse(bytes, cuts: [1]) == parse(bytes, cuts: [bytes.readableBytes]))
    }

    @Test func boxesInOneChunk_areSlicesNotCopies() throws {
        let bytes = try fixture("h264-baseline.mp4")
        var parser = StreamingParser()
        parser.append(bytes)
        var fragments = 0
        while let item = try parser.next() {
            guard case .fragment(let fragment) = item else { continue }
            fragments += 1
            let sameStorage = fragment.bytes.withUnsafeReadableBytes { fragmentBytes in
                bytes.withUnsafeReadableBytes { input in
                    fragmentBytes.baseAddress! >= input.baseAddress! && fragmentBytes.baseAddress! < input.baseAddress! + input.count
                }
            }
            #expect(sameStorage, "fragment \(fragments) was copied")
        }
        #expect(fragments == 3)
    }
}

/// A small deterministic generator, so a failing cut pattern can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
