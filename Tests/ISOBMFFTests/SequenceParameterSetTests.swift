import CamflowTesting
import Foundation
import ISOBMFF
import NIOCore
import Testing

/// The SPS parser against ffprobe on every fixture, on SPS bytes libx264 and
/// libx265 wrote for the shapes the fixtures lack (fields, 4:2:2, 10 bits,
/// conformance windows), on SPS built bit by bit (scaling lists, POC cycles),
/// and on hostile bytes, which it must refuse without ever trapping.
@Suite struct SequenceParameterSetTests {
    static let fixtures = ["h264-main-aac.mp4", "h264-baseline.mp4", "h264-high-bframes.mp4", "h265.mp4",
                           "h264-fragment-per-frame.mp4", "h264-odd-size.mp4", "h264-gop-change.mp4"]

    /// ffprobe's width and height of the first video stream.
    func probeSize(_ path: String) async throws -> (Int, Int) {
        let text = try await runTool("/usr/bin/ffprobe", ["-v", "error", "-select_streams", "v:0", "-show_entries",
                                                         "stream=width,height", "-of", "csv=p=0", path]).stdout
        let numbers = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",").compactMap { Int($0) }
        guard numbers.count == 2 else { throw ProbeError(message: "ffprobe said '\(text)' of \(path)") }
        return (numbers[0], numbers[1])
    }

    func sets(inFixture path: String) throws -> [SequenceParameterSet] {
        let result = parse(ByteBuffer(bytes: try Data(contentsOf: URL(fileURLWithPath: path))), cuts: [65536])
        let video = try #require(result.initSegments.first?.compactMap(\.video).first)
        return try video.sequenceParameterSets(decoding: nil)
    }

    @Test(arguments: fixtures)
    func fixtureSizes_matchFFprobe(_ file: String) async throws {
        let path = fixturesDirectory.appendingPathComponent(file).path
        let sets = try sets(inFixture: path)
        #expect(sets.count == 1)
        let (width, height) = try await probeSize(path)
        for set in sets {
            #expect(set.width == width && set.height == height, "\(file): \(set)")
            // Whole macroblocks or coding blocks, never less than the picture.
            #expect(set.codedWidth >= width && set.codedHeight >= height && set.codedWidth % 8 == 0, "\(file): \(set)")
        }
    }

    @Test func oddSize444_isCroppedByOneSampleUnits() throws {
        let set = try #require(try sets(inFixture: fixturesDirectory.appendingPathComponent("h264-odd-size.mp4").path).first)
        #expect(set.codedWidth == 336 && set.codedHeight == 192 && set.width == 333 && set.height == 187)
    }

    /// SPS NAL units written by libx264 and libx265 (ffmpeg 5.1); the sizes are
    /// ffprobe's, the coded sizes its trace_headers bitstream filter's fields.
    static let encoded: [(name: String, codec: VideoDecoderConfiguration.Codec, hex: String,
                          coded: (Int, Int), shown: (Int, Int))] = [
        ("interlaced (frame_mbs_only 0)", .h264, "67640015acd941410fcb808800000300080000030190f8a14cb0", (320, 256), (320, 240)),
        ("High 4:2:2 with cropping", .h264, "677a000bbcd942cff8ec0440000003004000000c83c50a6580", (176, 112), (176, 99)),
        ("High 10", .h264, "676e000aa6cd94626c0440000003004000000c83c4896580", (96, 64), (96, 64)),
        ("H.265 conformance window", .h265,
         "42010101600000030090000003000003001ea03481077796566b932bc05a020000030002000003003210", (104, 64), (100, 60)),
        ("H.265 4:4:4", .h265,
         "4201010408000003009e0800000300001e90069020e7bcb2b35c995e02d0100000030010000003019080", (104, 64), (98, 62)),
    ]

    @Test(arguments: encoded.indices)
    func encoderSPS_givesFFprobesSize(_ index: Int) throws {
        let sample = Self.encoded[index]
        let set = try SequenceParameterSet(parsing: ByteBuffer(bytes: hexBytes(sample.hex)), codec: sample.codec)
        #expect(set.codedWidth == sample.coded.0 && set.codedHeight == sample.coded.1, "\(sample.name): \(set)")
        #expect(set.width == sample.shown.0 && set.height == sample.shown.1, "\(sample.name): \(set)")
    }

    @Test func spsBombFixtures_declare16000x16000() throws {
        for file in ["h264-16000x16000.mp4", "h265-16000x16000.mp4"] {
            let set = try #require(try sets(inFixture: fixturesDirectory.appendingPathComponent("sps-bombs/\(file)").path).first)
            #expect(set.codedWidth == 16000 && set.codedHeight == 16000 && set.codedPixels == 256_000_000, "\(file)")
        }
    }

    /// A High-profile SPS with every optional part: the size read after
    /// them is right only if each was passed bit for bit.
    static func craftedHigh(chromaFormat: Int = 1, scalingLists: Bool = true, width: Int = 1920, height: Int = 1080,
                            frameOnly: Bool = true, pocType: Int = 1) -> [UInt8] {
        craftedHighWithSizes(chromaFormat: chromaFormat, scalingLists: scalingLists, width: width, height: height,
                             frameOnly: frameOnly, pocType: pocType).bytes
    }

    /// The SPS and the sizes it declares, as built: coded (whole macroblocks) and shown (cropped in crop units).
    static func craftedHighWithSizes(chromaFormat: Int, scalingLists: Bool, width: Int, height: Int, frameOnly: Bool,
                                     pocType: Int) -> (bytes: [UInt8], coded: (Int, Int), shown: (Int, Int)) {
        var w = BitWriter()
        w.u(0x67, 8)
        w.u(100, 8)
        w.u(0, 8)
        w.u(40, 8)
        w.ue(3)  // seq_parameter_set_id
        w.ue(chromaFormat)
        if chromaFormat == 3 { w.u(0, 1) }
        w.ue(2)
        w.ue(2)
        w.u(0, 1)
        w.u(scalingLists ? 1 : 0, 1)
        if scalingLists {
            for list in 0..<(chromaFormat == 3 ? 12 : 8) {
                switch list % 3 {
                case 0:  // a long list: deltas up and down, the extremes included, until one makes nextScale 0
                    w.u(1, 1)
                    var last = 8, next = 8
                    for j in 0..<(list < 6 ? 16 : 64) where next != 0 {
                        let delta = [-128, 127, 5, -7, 0, 1][j % 6]
                        w.se(delta)
                        next = (last + delta + 256) % 256
                        last = next == 0 ? last : next
                    }
                case 1:  // the default list: a first delta making nextScale 0
                    w.u(1, 1)
                    w.se(-8)
                default:  // absent
                    w.u(0, 1)
                }
            }
        }
        w.ue(12)  // log2_max_frame_num_minus4
        w.ue(pocType)
        if pocType == 0 { w.ue(4) }
        if pocType == 1 {
            w.u(0, 1)
            w.se(-3)
            w.se(100_000)
            w.ue(255)
            for i in 0..<255 { w.se(i % 2 == 0 ? i : -i) }
        }
        w.ue(4)  // max_num_ref_frames
        w.u(0, 1)
        let fieldFactor = frameOnly ? 1 : 2
        let mbHeight = (height + 16 * fieldFactor - 1) / (16 * fieldFactor)
        w.ue((width + 15) / 16 - 1)
        w.ue(mbHeight - 1)
        w.u(frameOnly ? 1 : 0, 1)
        if !frameOnly { w.u(1, 1) }
        w.u(1, 1)
        let cropUnitY = (chromaFormat == 1 ? 2 : 1) * fieldFactor
        let cropUnitX = chromaFormat == 3 ? 1 : 2
        let rightCrop = (((width + 15) / 16 * 16) - width) / cropUnitX
        let bottomCrop = (mbHeight * 16 * fieldFactor - height) / cropUnitY
        w.u(rightCrop > 0 || bottomCrop > 0 ? 1 : 0, 1)
        if rightCrop > 0 || bottomCrop > 0 {
            w.ue(0)
            w.ue(rightCrop)
            w.ue(0)
            w.ue(bottomCrop)
        }
        w.u(1, 1)  // vui_parameters_present_flag: what follows is never read
        w.u(0xFFFF, 16)
        let coded = ((width + 15) / 16 * 16, mbHeight * 16 * fieldFactor)
        return (w.nalUnit(), coded, (coded.0 - rightCrop * cropUnitX, coded.1 - bottomCrop * cropUnitY))
    }

    @Test(arguments: [(1, true, 0), (1, false, 1), (3, true, 1), (2, false, 2), (1, true, 2)])
    func craftedHighSPS_readsPastScalingListsAndPOCCycles(_ chroma: Int, _ frameOnly: Bool, _ poc: Int) throws {
        let crafted = Self.craftedHighWithSizes(chromaFormat: chroma, scalingLists: true, width: 1918, height: 1078,
                                                frameOnly: frameOnly, pocType: poc)
        if poc == 1 { #expect(crafted.bytes.count > 300, "the lists and the cycle make a long SPS") }
        let set = try SequenceParameterSet(parsing: ByteBuffer(bytes: crafted.bytes), codec: .h264)
        #expect(set.id == 3 && set.codedWidth == crafted.coded.0 && set.codedHeight == crafted.coded.1, "\(set)")
        #expect(set.width == crafted.shown.0 && set.height == crafted.shown.1, "\(set)")
        #expect(set.width >= 1918 && set.height >= 1078 && set.height <= 1080, "\(set)")
    }

    @Test func emulationPrevention_isRemovedBeforeReading() throws {
        // Zero runs in the fields make the writer insert 0x03 after 0x0000.
        var w = BitWriter()
        w.u(0x67, 8); w.u(66, 8); w.u(0, 16)
        w.ue(0); w.ue(0); w.ue(2); w.ue(0); w.u(0, 1)
        w.ue(0xFFFF_FFFE); w.ue(1); w.u(1, 1); w.u(1, 1); w.u(0, 1)
        let bytes = w.nalUnit()
        var escaped = 0
        for i in 2..<bytes.count where bytes[i - 2] == 0 && bytes[i - 1] == 0 && bytes[i] == 3 { escaped += 1 }
        #expect(escaped >= 1, "\(bytes)")
        let set = try SequenceParameterSet(parsing: ByteBuffer(bytes: bytes), codec: .h264)
        #expect(set.codedWidth == 0xFFFF_FFFF * 16 && set.codedHeight == 32, "\(set)")
    }

    @Test func hostileSPS_isRefusedWithAReason() throws {
        func refusal(_ bytes: [UInt8], _ codec: VideoDecoderConfiguration.Codec = .h264) -> ParseError? {
            do {
                _ = try SequenceParameterSet(parsing: ByteBuffer(bytes: bytes), codec: codec)
                return nil
            } catch {
                return error
            }
        }
        // A PPS, an empty unit, a forbidden bit.
        #expect(refusal([0x68, 0xCE, 0x38, 0x80])?.message.contains("not an H.264 SPS") == true)
        #expect(refusal([])?.code == .truncatedBox)
        #expect(refusal([0xE7, 0x42, 0, 0x1E, 0x80]) != nil)
        // An exp-Golomb code of 40 leading zeros.
        var long = BitWriter()
        long.u(0x67, 8); long.u(66, 8); long.u(0, 16); long.u(0, 40); long.u(1, 1)
        #expect(refusal(long.nalUnit())?.message.contains("longer than 32 bits") == true)
        // Cropping that leaves nothing.
        var crop = BitWriter()
        crop.u(0x67, 8); crop.u(66, 8); crop.u(0, 16)
        crop.ue(0); crop.ue(0); crop.ue(2); crop.ue(1); crop.u(0, 1)
        crop.ue(0); crop.ue(0); crop.u(1, 1); crop.u(1, 1); crop.u(1, 1)
        crop.ue(0); crop.ue(8); crop.ue(0); crop.ue(0)
        #expect(refusal(crop.nalUnit())?.message.contains("leaves nothing") == true)
        // The largest sizes the codes can hold: no overflow.
        var huge = BitWriter()
        huge.u(0x67, 8); huge.u(66, 8); huge.u(0, 16)
        huge.ue(0); huge.ue(0); huge.ue(2); huge.ue(1); huge.u(0, 1)
        huge.ue(0xFFFF_FFFE); huge.ue(0xFFFF_FFFE); huge.u(0, 1); huge.u(0, 1); huge.u(1, 1); huge.u(0, 1)
        let set = try SequenceParameterSet(parsing: ByteBuffer(bytes: huge.nalUnit()), codec: .h264)
        #expect(set.codedWidth == 0xFFFF_FFFF * 16 && set.codedHeight == 0xFFFF_FFFF * 32)
        // An H.265 SPS with seven sub-layers, cut short.
        #expect(refusal([0x42, 0x01, 0x0C, 0xFF], .h265)?.code == .truncatedBox)
        #expect(refusal([0x42, 0x01, 0x0E, 0xFF], .h265)?.message.contains("at most 6") == true)
    }

    /// Every prefix and many bit flips of every SPS: an error or a size, never a trap.
    /// Seconds of parsing in a debug build: it yields now and then, so that the
    /// tests running beside it on the cooperative pool are not held up meanwhile.
    @Test func truncatedAndFlippedSPS_neverTrap() async throws {
        var units = Self.encoded.map { (hexBytes($0.hex), $0.codec) }
        units.append((Self.craftedHigh(), .h264))
        units.append((Self.craftedHigh(chromaFormat: 3, frameOnly: false, pocType: 0), .h264))
        var generator = SystemRandomNumberGenerator()
        var parsed = 0, refused = 0
        for (bytes, codec) in units {
            for length in 0...bytes.count {
                do {
                    _ = try SequenceParameterSet(parsing: ByteBuffer(bytes: bytes.prefix(length)), codec: codec)
                    parsed += 1
                } catch {
                    refused += 1
                }
            }
            for flip in 0..<2000 {
                if flip % 50 == 0 { await Task.yield() }
                var flipped = bytes
                for _ in 0..<Int.random(in: 1...4, using: &generator) {
                    let bit = Int.random(in: 0..<(flipped.count * 8), using: &generator)
                    flipped[bit / 8] ^= 1 << UInt8(bit % 8)
                }
                if let set = try? SequenceParameterSet(parsing: ByteBuffer(bytes: flipped), codec: codec) {
                    #expect(set.width > 0 && set.height > 0 && set.width <= set.codedWidth && set.height <= set.codedHeight)
                }
            }
        }
        #expect(parsed >= units.count && refused > 0, "\(parsed) prefixes parsed, \(refused) refused")
    }

    @Test func inBandSPS_isFoundInTheSample_andAStrayLengthIsAnError() throws {
        let path = fixturesDirectory.appendingPathComponent("h264-baseline.mp4").path
        let result = parse(ByteBuffer(bytes: try Data(contentsOf: URL(fileURLWithPath: path))), cuts: [65536])
        let video = try #require(result.initSegments.first?.compactMap(\.video).first)
        let bomb = Self.craftedHigh(scalingLists: false, width: 16000, height: 16000, pocType: 2)
        var sample = ByteBuffer()
        sample.writeInteger(UInt32(bomb.count))
        sample.writeBytes(bomb)
        sample.writeInteger(UInt32(2))
        sample.writeBytes([0x65, 0x88])
        let sets = try video.sequenceParameterSets(decoding: sample)
        #expect(sets.map(\.codedWidth) == [320, 16000])
        sample.writeInteger(UInt16(7))
        #expect(throws: ParseError.self) { try video.sequenceParameterSets(decoding: sample) }
    }
}

func hexBytes(_ hex: String) -> [UInt8] {
    var bytes: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
        let next = hex.index(index, offsetBy: 2)
        bytes.append(UInt8(hex[index..<next], radix: 16) ?? 0)
        index = next
    }
    return bytes
}

/// Writes the bits of a NAL unit; `nalUnit()` ends it (stop bit, alignment)
/// and inserts the emulation prevention bytes.
struct BitWriter {
    var bits: [Bool] = []

    mutating func u(_ value: Int, _ count: Int) {
        for shift in stride(from: count - 1, through: 0, by: -1) { bits.append(shift < 63 && (value >> shift) & 1 == 1) }
    }

    mutating func ue(_ value: Int) {
        let code = value + 1
        let length = Int.bitWidth - code.leadingZeroBitCount
        u(0, length - 1)
        u(code, length)
    }

    mutating func se(_ value: Int) { ue(value > 0 ? 2 * value - 1 : -2 * value) }

    func nalUnit() -> [UInt8] {
        var all = bits + [true]
        while all.count % 8 != 0 { all.append(false) }
        var raw: [UInt8] = []
        for start in stride(from: 0, to: all.count, by: 8) {
            raw.append(all[start..<start + 8].reduce(0) { $0 << 1 | ($1 ? 1 : 0) })
        }
        var out: [UInt8] = []
        var zeros = 0
        for byte in raw {
            if zeros >= 2, byte <= 3 {
                out.append(3)
                zeros = 0
            }
            out.append(byte)
            zeros = byte == 0 ? zeros + 1 : 0
        }
        return out
    }
}
