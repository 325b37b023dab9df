@testable import FilesPlugin
import NIOCore
import Testing

/// The reader's buffers: reused once downstream let go, bounded while it holds them.
@Suite struct BlockPoolTests {
    let block = 1 << 20

    func fill(_ buffer: inout ByteBuffer) { buffer.writeRepeatingByte(7, count: 100) }

    @Test func aBufferHeldDownstream_isNotReused_andTheLimitHolds() throws {
        var pool = BlockPool(limitBytes: 2 << 20)
        var first: ByteBuffer? = try pool.readNow(block, fill)
        let second = try pool.readNow(block, fill)
        try withExtendedLifetime(second) {
            #expect(first != nil && second != nil)
            #expect(pool.bytesInUse == 2 << 20)
            // Both are still held downstream: a third would pass the limit.
            let refused = try pool.readNow(block, fill)
            #expect(refused == nil)
            // Downstream drops the first: its storage is reused, not a new one made.
            let storage = first!.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
            first = nil
            let third = try pool.readNow(block, fill)
            #expect(third?.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } == storage)
            #expect(third?.readableBytes == 100, "a reused buffer starts empty")
        }
    }

    @Test func oneLargeBox_isAlwaysRead_evenOverTheLimit() throws {
        var pool = BlockPool(limitBytes: 1 << 20)
        let large = try pool.readNow(4 << 20, fill)
        try withExtendedLifetime(large) {
            #expect(large != nil, "with nothing held, one buffer may pass the limit: the reader never deadlocks")
            let refused = try pool.readNow(block, fill)
            #expect(refused == nil, "but nothing more while it is held")
        }
    }
}
