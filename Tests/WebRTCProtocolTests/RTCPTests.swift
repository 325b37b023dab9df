import NIOCore
import Testing
@testable import WebRTCProtocol

/// RTCP packets byte for byte: what Chromium sends (RR, SDES, NACK, PLI, FIR,
/// BYE) and camflow's sender report.
@Suite struct RTCPTests {
    static func hex(_ text: String) -> [UInt8] { STUNVectorTests.hex(text) }
    static func parse(_ text: String) throws(WebRTCWireError) -> [RTCPPacket] { try RTCPCompound.parse(ByteBuffer(bytes: hex(text))) }
    static func written(_ packet: RTCPPacket) throws(WebRTCWireError) -> [UInt8] {
        var buffer = ByteBuffer()
        try packet.write(to: &buffer)
        return Array(buffer.readableBytesView)
    }

    @Test func senderReport_writesAndReadsBack() throws {
        let report = RTCPSenderReport(ssrc: 0x1234_5678, ntpTimestamp: 0xE65A_4B0C_8000_0000, rtpTimestamp: 123_456,
                                      packetCount: 100, octetCount: 100_000)
        let bytes = "80c80006 12345678 e65a4b0c 80000000 0001e240 00000064 000186a0"
        #expect(try Self.written(.senderReport(report)) == Self.hex(bytes))
        #expect(try Self.parse(bytes) == [.senderReport(report)])
        #expect(RTCPSenderReport.ntpTimestamp(unixNanoseconds: 0) == UInt64(2_208_988_800) << 32)
        #expect(RTCPSenderReport.ntpTimestamp(unixNanoseconds: 1_500_000_000) == (UInt64(2_208_988_801) << 32 | 0x8000_0000))
    }

    @Test func receiverReport_withABlock() throws {
        let block = RTCPReportBlock(ssrc: 0xDEAD_BEEF, fractionLost: 0x20, cumulativeLost: -1, highestSequence: 0x0001_0064,
                                    jitter: 16, lastSenderReport: 0xA0B0_C0D0, delaySinceLastSenderReport: 0x0001_0000)
        let bytes = "81c90007 00000001 deadbeef 20ffffff 00010064 00000010 a0b0c0d0 00010000"
        #expect(try Self.parse(bytes) == [.receiverReport(ssrc: 1, reports: [block])])
        #expect(try Self.written(.receiverReport(ssrc: 1, reports: [block])) == Self.hex(bytes))
        let big = RTCPReportBlock(ssrc: 2, cumulativeLost: 0x7F_FFFF)
        #expect(try Self.parse(Self.written(.receiverReport(ssrc: 1, reports: [big])).map { String(format2: $0) }.joined())
            == [.receiverReport(ssrc: 1, reports: [big])])
    }

    @Test func chromiumsNACK_namesTheLostSequenceNumbers() throws {
        // Seen from Chromium: length 3, one FCI, PID exact, BLP 0.
        let packets = try Self.parse("81cd0003 00000001 12345678 01020000")
        #expect(packets == [.nack(senderSSRC: 1, mediaSSRC: 0x1234_5678, entries: [RTCPNACKEntry(packetID: 0x0102, lostBitmask: 0)])])
        #expect(RTCPNACKEntry(packetID: 10, lostBitmask: 0x8001).sequenceNumbers == [10, 11, 26])
        #expect(RTCPNACKEntry(packetID: 65535, lostBitmask: 0x0003).sequenceNumbers == [65535, 0, 1])
        #expect(RTCPNACKEntry(packetID: 1, lostBitmask: 0xFFFF).sequenceNumbers.count == 17)
        let lost: [UInt16] = [65530, 65531, 65535, 4, 40, 41, 57, 58]
        let entries = RTCPNACKEntry.covering(lost)
        #expect(entries.flatMap(\.sequenceNumbers) == lost && entries.count == 3)
        let packet = RTCPPacket.nack(senderSSRC: 1, mediaSSRC: 2, entries: entries)
        #expect(try RTCPCompound.parse(ByteBuffer(bytes: Self.written(packet))) == [packet])
    }

    @Test func pliAndFIR() throws {
        #expect(try Self.parse("81ce0002 00000001 12345678") == [.pictureLoss(senderSSRC: 1, mediaSSRC: 0x1234_5678)])
        let fir = RTCPPacket.fullIntraRequest(senderSSRC: 1, entries: [RTCPFIREntry(ssrc: 0x1234_5678, sequenceNumber: 5)])
        #expect(try Self.parse("84ce0004 00000001 00000000 12345678 05000000") == [fir])
        #expect(try Self.written(fir) == Self.hex("84ce0004 00000001 00000000 12345678 05000000"))
        #expect(try Self.written(.pictureLoss(senderSSRC: 1, mediaSSRC: 0x1234_5678)) == Self.hex("81ce0002 00000001 12345678"))
    }

    @Test func compoundAndReducedSize_walkEveryPacket() throws {
        // RR (no blocks) + SDES (CNAME "ab") + NACK + BYE + REMB-like PSFB 15 + XR.
        let packets = try Self.parse("""
            80c90001 00000001  81ca0002 00000001 01026162  81cd0003 00000001 12345678 00070000
            81cb0001 00000001  8fce0003 00000001 00000000 52454d42  80cf0001 00000001
            """)
        #expect(packets == [
            .receiverReport(ssrc: 1, reports: []), .other(packetType: 202, format: 1),
            .nack(senderSSRC: 1, mediaSSRC: 0x1234_5678, entries: [RTCPNACKEntry(packetID: 7, lostBitmask: 0)]),
            .bye(ssrcs: [1]), .other(packetType: 206, format: 15), .other(packetType: 207, format: 0),
        ])
        // Reduced-size: a PLI alone, padded (the last packet may be).
        #expect(try Self.parse("a1ce0003 00000001 12345678 00000004") == [.pictureLoss(senderSSRC: 1, mediaSSRC: 0x1234_5678)])
        #expect(try Self.written(.bye(ssrcs: [1, 2])) == Self.hex("82cb0002 00000001 00000002"))
    }

    @Test(arguments: [
        ("3 bytes", "80c900", WebRTCWireError.Code.truncated), ("version 1", "40c90001 00000001", .badHeader),
        ("length past the end", "80c90002 00000001", .badLength), ("SR without its blocks", "81c80006 " + String(repeating: "00000000 ", count: 6), .badLength),
        ("RR short", "80c90000", .badLength), ("BYE short", "82cb0001 00000001", .badLength),
        ("NACK without FCI", "81cd0002 00000001 00000002", .badLength), ("PLI short", "81ce0001 00000001", .badLength),
        ("FIR of 12 bytes", "84ce0005 00000001 00000000 00000002 05000000 00000000", .badLength),
        ("NACK padded to half a word", "a1cd0004 00000001 00000002 00070000 00000002", .badLength),
        ("padding zero", "a1ce0002 00000001 00000000", .badLength), ("padding past the packet", "a1ce0002 00000001 000000ff", .badLength),
        ("padding not last", "a1ce0003 00000001 00000002 00000004 81ce0002 00000001 00000002", .badLength),
        ("header cut", "80c90001 00000001 80c9", .truncated),
    ])
    func hostilePackets_areTypedErrors(_ what: String, _ bytes: String, code: WebRTCWireError.Code) {
        do {
            _ = try Self.parse(bytes)
            Issue.record("\(what) was accepted")
        } catch {
            #expect(error.code == code, "\(what): \(error)")
        }
    }

    @Test func bounds_holdAndWritersRefuseWhatTheyCannotWrite() throws {
        let sixtyFive = String(repeating: "81ce0002 00000001 00000002 ", count: 65)
        do { _ = try Self.parse(sixtyFive); Issue.record("accepted") } catch { #expect(error.code == .tooLarge) }
        do { _ = try RTCPCompound.parse(ByteBuffer(repeating: 0x80, count: 16388)); Issue.record("accepted") } catch {
            #expect(error.code == .tooLarge)
        }
        #expect(throws: WebRTCWireError.self) { try Self.written(.other(packetType: 202, format: 1)) }
        #expect(throws: WebRTCWireError.self) { try Self.written(.nack(senderSSRC: 1, mediaSSRC: 2, entries: [])) }
        #expect(throws: WebRTCWireError.self) { try Self.written(.bye(ssrcs: Array(0..<32))) }
    }
}

extension String {
    /// Two lowercase hex digits.
    init(format2 byte: UInt8) { self = (byte < 16 ? "0" : "") + String(byte, radix: 16) }
}
