import CWebRTC
public import NIOCore

/// The SRTP master keys of one side of a DTLS-SRTP connection, each 30
/// bytes (16 of AES key, 14 of salt), split from the exported keying
/// material as RFC 5764 §4.2 lays it out: client key, server key, client
/// salt, server salt.
public struct SRTPKeys: Sendable, Equatable {
    /// Protects what this side sends.
    public let outbound: [UInt8]
    /// Unprotects what the peer sends.
    public let inbound: [UInt8]

    /// - Parameter isServer: camflow is the DTLS server, so its outbound
    ///   key is the server's.
    public init(keyingMaterial km: [UInt8], isServer: Bool) {
        precondition(km.count == 60, "RFC 5764 keying material for AES128_CM_SHA1_80 is 60 bytes")
        let client = Array(km[0..<16] + km[32..<46])
        let server = Array(km[16..<32] + km[46..<60])
        outbound = isServer ? server : client
        inbound = isServer ? client : server
    }
}

/// An SRTP error from libsrtp2 (`srtp_err_status_t`).
public struct SRTPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The status code.
    public let status: Int32

    /// Authentication failed: tampered, or not from this peer.
    public static let authenticationFailed = SRTPError(status: 7)
    /// A packet index seen before.
    public static let replayed = SRTPError(status: 9)
    /// A packet index older than the replay window.
    public static let tooOld = SRTPError(status: 10)
    /// Bad parameter (empty packet, wrong key length, window out of range).
    public static let badParameter = SRTPError(status: 2)

    public var description: String {
        let names: [Int32: String] = [1: "fail", 2: "bad parameter", 3: "out of memory", 7: "authentication failed",
                                      8: "cipher failed", 9: "replayed packet", 10: "packet older than the replay window",
                                      21: "parse error"]
        return "SRTP: \(names[status] ?? "error") (srtp_err_status_t \(status))"
    }
}

/// One direction of SRTP and SRTCP (AES_CM_128_HMAC_SHA1_80) for any SSRC:
/// outbound protects camflow's RTP and RTCP, inbound unprotects the
/// peer's. In place, in the caller's `ByteBuffer`.
///
/// Not `Sendable`: used on the peer's event loop only.
public final class SRTPSession {
    /// Which way the packets go.
    public enum Direction: Sendable { case outbound, inbound }

    private let pointer: OpaquePointer

    /// - Parameters:
    ///   - keyAndSalt: 30 bytes, from `SRTPKeys`.
    ///   - replayWindow: packets of replay window (64 ..< 32768; 0 = 128):
    ///     inbound only.
    /// - Throws: `SRTPError`, or `WebRTCLibraries.LoadError` without libsrtp2.
    public init(keyAndSalt: [UInt8], direction: Direction, replayWindow: Int = 0) throws {
        guard keyAndSalt.count == 30, replayWindow == 0 || (64..<0x8000).contains(replayWindow) else {
            throw SRTPError.badParameter
        }
        try WebRTCLibraries.load()
        var status: Int32 = 0
        guard let made = cf_srtp_new(keyAndSalt, direction == .outbound ? 1 : 0, UInt32(replayWindow), &status) else {
            throw SRTPError(status: status)
        }
        pointer = made
    }

    deinit { cf_srtp_free(pointer) }

    /// Encrypts the RTP packet (the readable bytes) and appends its 10-byte
    /// tag, growing the buffer if it has no room for it.
    public func protect(rtp packet: inout ByteBuffer) throws(SRTPError) {
        try run(&packet, room: Int(CF_SRTP_MAX_TRAILER), cf_srtp_protect)
    }

    /// Encrypts an RTCP packet, appending the SRTCP index and tag.
    public func protect(rtcp packet: inout ByteBuffer) throws(SRTPError) {
        try run(&packet, room: Int(CF_SRTCP_MAX_TRAILER), cf_srtp_protect_rtcp)
    }

    /// Checks and decrypts an SRTP packet; the tag is removed.
    public func unprotect(rtp packet: inout ByteBuffer) throws(SRTPError) {
        try run(&packet, room: 0, cf_srtp_unprotect)
    }

    /// Checks and decrypts an SRTCP packet (the peer's feedback).
    public func unprotect(rtcp packet: inout ByteBuffer) throws(SRTPError) {
        try run(&packet, room: 0, cf_srtp_unprotect_rtcp)
    }

    private func run(_ packet: inout ByteBuffer, room: Int,
                     _ operation: (OpaquePointer?, UnsafeMutablePointer<UInt8>?, UnsafeMutablePointer<Int32>?) -> Int32)
        throws(SRTPError) {
        let start = packet.readerIndex
        guard packet.readableBytes > 0, packet.readableBytes <= Int(Int32.max) - room else { throw .badParameter }
        if room > 0 { packet.reserveCapacity(minimumWritableBytes: room) }
        var length = Int32(packet.readableBytes)
        let status = packet.withVeryUnsafeMutableBytes { storage in
            operation(pointer, storage.baseAddress!.advanced(by: start).assumingMemoryBound(to: UInt8.self), &length)
        }
        guard status == 0 else { throw SRTPError(status: status) }
        packet.moveWriterIndex(to: start + Int(length))
    }
}

@available(*, unavailable)
extension SRTPSession: Sendable {}
