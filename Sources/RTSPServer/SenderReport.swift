import NIOCore

/// An RTCP sender report (RFC 3550 §6.4.1) without reception blocks: the
/// wall-clock time (NTP format) that an RTP time corresponds to, so that a
/// player lines up a stream's tracks, and what was sent so far.
struct SenderReport: Sendable, Equatable {
    var ssrc: UInt32
    /// Seconds since 1970.
    var wallTime: Double
    var rtpTime: UInt32
    var packets: UInt32
    var octets: UInt32

    /// Seconds from 1900 (NTP's era) to 1970.
    static let ntpOffset: UInt64 = 2_208_988_800

    /// The 64-bit NTP timestamp: seconds since 1900 and a binary fraction.
    var ntp: UInt64 {
        let whole = wallTime.rounded(.down)
        let seconds = UInt64(max(whole, 0)) &+ Self.ntpOffset
        let fraction = UInt64(((wallTime - whole) * 4_294_967_296).rounded(.down)) & 0xFFFF_FFFF
        return seconds << 32 | fraction
    }

    var bytes: ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(28)
        buffer.writeInteger(UInt8(0x80))  // version 2, no padding, no reception reports
        buffer.writeInteger(UInt8(200))  // SR
        buffer.writeInteger(UInt16(6))  // length in 32-bit words less one
        buffer.writeInteger(ssrc)
        buffer.writeInteger(ntp)
        buffer.writeInteger(rtpTime)
        buffer.writeInteger(packets)
        buffer.writeInteger(octets)
        return buffer
    }
}
