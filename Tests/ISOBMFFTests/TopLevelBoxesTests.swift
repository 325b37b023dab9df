import ISOBMFF
import NIOCore
import Testing

/// Cutting a file between top-level boxes, from box headers alone.
@Suite struct TopLevelBoxesTests {
    /// A box of `size` bytes (header included) of `type`.
    func box(_ type: String, _ size: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(size))
        buffer.writeString(type)
        buffer.writeRepeatingByte(0, count: size - 8)
        return buffer
    }

    func joined(_ boxes: ByteBuffer...) -> ByteBuffer {
        var all = ByteBuffer()
        for var box in boxes { all.writeBuffer(&box) }
        return all
    }

    @Test func cutsAfterTheLastWholeBox_neverBetweenMoofAndMdat() {
        let file = joined(box("ftyp", 24), box("moov", 100), box("moof", 50), box("mdat", 1000), box("moof", 50), box("mdat", 1000))
        // The whole file: every box whole.
        #expect(TopLevelBoxes.wholePrefix(of: file) == .whole(length: 2224))
        // Cut inside the second mdat: the second moof goes with it, not before it.
        #expect(TopLevelBoxes.wholePrefix(of: file.getSlice(at: 0, length: 1500)!) == .whole(length: 1174))
        // Cut inside the first mdat: ftyp + moov only.
        #expect(TopLevelBoxes.wholePrefix(of: file.getSlice(at: 0, length: 500)!) == .whole(length: 124))
        // Cut inside the moov: the ftyp stays with it, so nothing is whole.
        #expect(TopLevelBoxes.wholePrefix(of: file.getSlice(at: 0, length: 60)!) == .firstBoxExceeds(size: 124))
    }

    @Test func aFragmentLargerThanTheBlock_saysHowLargeItIs() {
        let fragment = joined(box("moof", 50), box("mdat", 5000))
        #expect(TopLevelBoxes.wholePrefix(of: fragment.getSlice(at: 0, length: 100)!) == .firstBoxExceeds(size: 5050))
    }

    @Test func garbageAndSizeZero_areNotCut() {
        var garbage = ByteBuffer()
        garbage.writeRepeatingByte(0xff, count: 64)
        #expect(TopLevelBoxes.wholePrefix(of: garbage) == .notBoxes)
        #expect(!TopLevelBoxes.startsFile(garbage))
        // A size-0 box runs to the end of the file: what comes before it is cut, it is not.
        let tail = joined(box("moof", 16), box("mdat", 16), box("free", 8))
        var sizeZero = tail
        sizeZero.setInteger(UInt32(0), at: 32)
        #expect(TopLevelBoxes.wholePrefix(of: sizeZero) == .whole(length: 32))
        #expect(TopLevelBoxes.startsFile(box("ftyp", 24)))
    }

    @Test func largeSizes_64Bit_areRead() {
        var large = ByteBuffer()
        large.writeInteger(UInt32(1))
        large.writeString("mdat")
        large.writeInteger(UInt64(1 << 40))
        #expect(TopLevelBoxes.wholePrefix(of: large) == .firstBoxExceeds(size: 1 << 40))
    }

    @Test func aHugeSizeAfterAnFtyp_saturates_neverTraps() {
        var file = box("ftyp", 16)
        file.writeInteger(UInt32(1))
        file.writeString("moov")
        file.writeInteger(UInt64.max)
        #expect(TopLevelBoxes.wholePrefix(of: file) == .firstBoxExceeds(size: .max))
    }
}
