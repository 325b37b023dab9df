import ISOBMFF
import NIOCore
import Testing

/// Broken streams give typed errors with offsets and box paths, never a
/// crash, and parsing carries on after them.
@Suite struct BadInputTests {
    /// The fixture split into its top-level boxes.
    func boxes(_ name: String) throws -> [(type: String, bytes: ByteBuffer)] {
        var input = try fixture(name)
        var out: [(String, ByteBuffer)] = []
        while input.readableBytes >= 8 {
            let size = Int(input.getInteger(at: input.readerIndex, as: UInt32.self)!)
            let type = String(decoding: input.getBytes(at: input.readerIndex + 4, length: 4)!, as: UTF8.self)
            out.append((type, input.readSlice(length: size)!))
        }
        return out
    }

    func joined(_ parts: [ByteBuffer]) -> ByteBuffer {
        var out = ByteBuffer()
        for var part in parts { out.writeBuffer(&part) }
        return out
    }

    @Test func truncatedStream_isReportedAtTheEnd() throws {
        let parts = try boxes("h264-baseline.mp4")
        #expect(parts.map(\.type) == ["ftyp", "moov", "moof", "mdat", "moof", "mdat", "moof", "mdat", "mfra"])
        var bytes = joined(parts.prefix(8).map(\.bytes))
        bytes.moveWriterIndex(to: bytes.writerIndex - 100)
        let result = parse(bytes, cuts: [4096])
        #expect(result.errors.map(\.code) == [.truncatedStream])
        #expect(result.fragmentSequence == [1, 2], "the whole fragments before the cut are delivered")
    }

    @Test func garbageBetweenFragments_isReported_andParsingResumes() throws {
        let parts = try boxes("h264-baseline.mp4")
        var garbage = ByteBuffer()
        garbage.writeBytes((0..<300).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) | 0x80 })
        // ftyp moov moof mdat [garbage] moof mdat moof mdat
        let stream = joined(parts.prefix(4).map(\.bytes) + [garbage] + parts.dropFirst(4).map(\.bytes))
        let result = parse(stream, cuts: [777])
        #expect(result.errors.count == 1)
        #expect(result.errors.first?.code == .invalidBoxHeader)
        let offset = parts.prefix(4).reduce(0) { $0 + $1.bytes.readableBytes }
        #expect(result.errors.first?.offset == Int64(offset))
        #expect(result.fragmentSequence == [1, 2, 3], "every fragment is still found")
    }

    @Test func hugeBoxSize_isRejectedWithoutAllocating() throws {
        var stream = ByteBuffer()
        stream.writeInteger(UInt32(1))
        stream.writeBytes(Array("moov".utf8))
        stream.writeInteger(UInt64(1) << 40)
        let result = parse(stream, cuts: [16], configuration: .init(maxBoxSize: 1 << 20))
        #expect(result.errors.first?.code == .boxTooLarge)
        #expect(result.errors.first?.description == "box 'moov' claims 1099511627776 bytes, more than max-box-size (1048576) (box-too-large at byte 0 in moov)")
    }

    @Test func fragmentBeforeInit_isAnError_thenTheInitIsUsed() throws {
        let parts = try boxes("h264-baseline.mp4")
        // moof mdat, then ftyp moov moof mdat ...
        let stream = joined([parts[2].bytes, parts[3].bytes] + parts.map(\.bytes))
        let result = parse(stream, cuts: [1000])
        #expect(result.errors.map(\.code) == [.fragmentBeforeInit])
        #expect(result.errors.first?.offset == 0)
        #expect(result.fragmentSequence == [1, 2, 3])
    }

    @Test func trunPointingOutsideItsMdat_isAnError() throws {
        let parts = try boxes("h264-baseline.mp4")
        var moof = parts[2].bytes
        // Find the trun and make its data offset point far past the mdat.
        let raw = Array(moof.readableBytesView)
        let trun = try #require(findBox("trun", in: raw))
        let flags = UInt32(raw[trun + 9]) << 16 | UInt32(raw[trun + 10]) << 8 | UInt32(raw[trun + 11])
        try #require(flags & 1 != 0, "the fixture's trun has a data offset")
        moof.setInteger(UInt32(0x7FFF_0000), at: moof.readerIndex + trun + 16)
        let stream = joined([parts[0].bytes, parts[1].bytes, moof, parts[3].bytes, parts[4].bytes, parts[5].bytes])
        let result = parse(stream, cuts: [5000])
        #expect(result.errors.map(\.code) == [.sampleOutsideMdat])
        #expect(result.errors.first?.path == "moof/traf/trun")
        #expect(result.fragmentSequence == [2], "the next fragment still parses")
    }

    @Test func randomBytes_neverCrash() {
        var generator = SplitMix64(seed: 42)
        for _ in 0..<200 {
            var bytes = ByteBuffer()
            let count = Int(generator.next() % 4096)
            bytes.writeBytes((0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) })
            _ = parse(bytes, cuts: [Int(generator.next() % 512) + 1], configuration: .init(maxBoxSize: 1 << 16))
        }
    }

    /// Index of the first box of `type` (its size field) in `bytes`.
    func findBox(_ type: String, in bytes: [UInt8]) -> Int? {
        let pattern = Array(type.utf8)
        guard bytes.count >= 8 else { return nil }
        for i in 4..<(bytes.count - 4) where Array(bytes[i..<(i + 4)]) == pattern { return i - 4 }
        return nil
    }
}
