import NIOCore
import RTP
import Testing

@Suite struct RTPHeaderTests {
    @Test func header_writesAndReadsBack() throws {
        let header = RTPHeader(marker: true, payloadType: 96, sequenceNumber: 65535, timestamp: 0xFFFF_FFF0, ssrc: 0xDEAD_BEEF,
                               csrcs: [1, 2], extensionProfile: 0xBEDE, extensionData: ByteBuffer(bytes: [1, 2, 3, 4]))
        let packet = RTPPacket(header: header, payload: ByteBuffer(bytes: [9, 8, 7]))
        let bytes = try packet.bytes()
        #expect(bytes.readableBytes == 12 + 8 + 8 + 3)
        let parsed = try RTPPacket(parsing: bytes)
        #expect(parsed == packet)
    }

    @Test func padding_isStrippedFromThePayload() throws {
        var bytes = try RTPPacket(header: RTPHeader(payloadType: 0, sequenceNumber: 1, timestamp: 2, ssrc: 3),
                                  payload: ByteBuffer(bytes: [5, 6])).bytes()
        bytes.setInteger(UInt8(0xA0), at: 0)
        bytes.writeBytes([0, 0, 3])
        let parsed = try RTPPacket(parsing: bytes)
        #expect(Array(parsed.payload.readableBytesView) == [5, 6])
        #expect(parsed.header.padding)
    }

    /// Each malformed header is a typed refusal, never a trap.
    @Test(arguments: [
        ([UInt8](repeating: 0x80, count: 11), RTPError.Code.truncated),
        ([0x40] + [UInt8](repeating: 0, count: 11), .badVersion),
        ([0x8F] + [UInt8](repeating: 0, count: 20), .truncated),
        ([0x90] + [UInt8](repeating: 0, count: 12), .badExtension),
        ([0x90] + [UInt8](repeating: 0, count: 11) + [0, 0, 0xFF, 0xFF], .badExtension),
        ([0xA0] + [UInt8](repeating: 0, count: 11) + [1, 0], .badPadding),
        ([0xA0] + [UInt8](repeating: 0, count: 11) + [1, 9], .badPadding),
    ])
    func malformedHeaders_areRefused(_ bytes: [UInt8], _ code: RTPError.Code) {
        #expect(throws: RTPError.self) { try RTPPacket(parsing: ByteBuffer(bytes: bytes)) }
        do {
            _ = try RTPPacket(parsing: ByteBuffer(bytes: bytes))
        } catch {
            #expect(error.code == code, "\(error)")
        }
    }

    @Test func payload_isASliceOfThePacket() throws {
        var storage = ByteBuffer()
        storage.writeBytes([0x80, 96, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xAA, 0xBB])
        let parsed = try RTPPacket(parsing: storage)
        // Same storage: a slice, no copy.
        let sameStorage = storage.withUnsafeReadableBytes { whole in
            parsed.payload.withUnsafeReadableBytes { $0.baseAddress == whole.baseAddress.map { $0 + 12 } }
        }
        #expect(sameStorage)
    }
}
