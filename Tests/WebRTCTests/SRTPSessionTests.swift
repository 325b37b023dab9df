import NIOCore
import Testing
@testable import WebRTC

/// SRTP keyed from a real handshake: what camflow protects, the peer's side
/// of the same material unprotects, and the other way for RTCP.
@Suite struct SRTPSessionTests {
    /// An RTP packet: version 2, PT 108, the sequence number, SSRC 0x01020304.
    static func rtp(sequence: UInt16, size: Int = 1200) -> ByteBuffer {
        var packet = ByteBuffer()
        packet.writeBytes([0x80, 108])
        packet.writeInteger(sequence)
        packet.writeInteger(UInt32(90_000))
        packet.writeInteger(UInt32(0x0102_0304))
        packet.writeBytes((0..<(size - 12)).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        return packet
    }

    /// A receiver report (PT 201) with no report blocks.
    static func rtcp() -> ByteBuffer {
        var packet = ByteBuffer()
        packet.writeBytes([0x80, 201, 0, 1])
        packet.writeInteger(UInt32(0x0A0B_0C0D))
        return packet
    }

    static func keyedPair() throws -> (server: SRTPKeys, client: SRTPKeys) {
        let pair = try DTLSPair()
        pair.exchange()
        return (try pair.server.srtpKeys(), try pair.client.srtpKeys())
    }

    @Test func rtpProtectedByTheServerIsReadByTheClient() throws {
        let keys = try Self.keyedPair()
        let sender = try SRTPSession(keyAndSalt: keys.server.outbound, direction: .outbound)
        let receiver = try SRTPSession(keyAndSalt: keys.client.inbound, direction: .inbound)
        let original = Self.rtp(sequence: 1)
        var packet = original
        try sender.protect(rtp: &packet)
        #expect(packet.readableBytes == 1210, "the 10-byte HMAC-SHA1-80 tag")
        #expect(packet.getSlice(at: packet.readerIndex, length: 12) == original.getSlice(at: 0, length: 12),
                "the header stays clear")
        #expect(packet.getSlice(at: packet.readerIndex + 12, length: 1188) != original.getSlice(at: 12, length: 1188))
        var copy = packet
        try receiver.unprotect(rtp: &packet)
        #expect(packet == original)
        #expect(throws: SRTPError.replayed) { try receiver.unprotect(rtp: &copy) }
    }

    @Test func aTamperedPacketIsRefused() throws {
        let keys = try Self.keyedPair()
        let sender = try SRTPSession(keyAndSalt: keys.server.outbound, direction: .outbound)
        let receiver = try SRTPSession(keyAndSalt: keys.client.inbound, direction: .inbound)
        var packet = Self.rtp(sequence: 7)
        try sender.protect(rtp: &packet)
        let flipped = packet.readerIndex + 100
        packet.setInteger(packet.getInteger(at: flipped, as: UInt8.self)! ^ 0x01, at: flipped)
        #expect(throws: SRTPError.authenticationFailed) { try receiver.unprotect(rtp: &packet) }
        // The wrong direction's keys cannot read it either.
        let wrong = try SRTPSession(keyAndSalt: keys.client.outbound, direction: .inbound)
        var other = Self.rtp(sequence: 8)
        try sender.protect(rtp: &other)
        #expect(throws: SRTPError.authenticationFailed) { try wrong.unprotect(rtp: &other) }
    }

    @Test func rtcpBothWays() throws {
        let keys = try Self.keyedPair()
        // The browser's feedback (client → camflow).
        let browser = try SRTPSession(keyAndSalt: keys.client.outbound, direction: .outbound)
        let camflowIn = try SRTPSession(keyAndSalt: keys.server.inbound, direction: .inbound)
        var feedback = Self.rtcp()
        try browser.protect(rtcp: &feedback)
        #expect(feedback.readableBytes == 8 + 4 + 10, "E|index word and tag")
        var tampered = feedback
        tampered.setInteger(UInt8(0xFF), at: tampered.readerIndex + 5)
        #expect(throws: SRTPError.authenticationFailed) { try camflowIn.unprotect(rtcp: &tampered) }
        try camflowIn.unprotect(rtcp: &feedback)
        #expect(feedback == Self.rtcp())

        // camflow's sender reports (camflow → client).
        let camflowOut = try SRTPSession(keyAndSalt: keys.server.outbound, direction: .outbound)
        let browserIn = try SRTPSession(keyAndSalt: keys.client.inbound, direction: .inbound)
        var report = Self.rtcp()
        try camflowOut.protect(rtcp: &report)
        try browserIn.unprotect(rtcp: &report)
        #expect(report == Self.rtcp())
    }

    @Test func protectsInPlaceAfterTheReaderIndexAndGrowsAFullBuffer() throws {
        let keys = try Self.keyedPair()
        let sender = try SRTPSession(keyAndSalt: keys.server.outbound, direction: .outbound)
        let receiver = try SRTPSession(keyAndSalt: keys.client.inbound, direction: .inbound)
        var packet = ByteBuffer(bytes: [0xEE, 0xEE, 0xEE])
        packet.moveReaderIndex(forwardBy: 3)
        var body = Self.rtp(sequence: 3, size: 200)
        packet.writeBuffer(&body)
        let shared = packet // a second reference: protect must copy, not write under it
        try sender.protect(rtp: &packet)
        #expect(shared.readableBytes == 200)
        #expect(packet.readableBytes == 210)
        try receiver.unprotect(rtp: &packet)
        #expect(packet == Self.rtp(sequence: 3, size: 200))
    }

    @Test func badKeysAndEmptyPacketsAreRefused() throws {
        #expect(throws: SRTPError.badParameter) { try SRTPSession(keyAndSalt: [1, 2, 3], direction: .outbound) }
        #expect(throws: SRTPError.badParameter) {
            try SRTPSession(keyAndSalt: [UInt8](repeating: 1, count: 30), direction: .inbound, replayWindow: 10)
        }
        let session = try SRTPSession(keyAndSalt: [UInt8](repeating: 1, count: 30), direction: .outbound)
        var empty = ByteBuffer()
        #expect(throws: SRTPError.badParameter) { try session.protect(rtp: &empty) }
    }
}
