public import Camflow
import Crypto
import Foundation
import SwiftASN1
import X509

/// The SHA-256 fingerprint of a DTLS certificate (RFC 8122), as the SDP
/// carries it in `a=fingerprint:` and as checked against the peer's
/// certificate after the handshake.
public struct DTLSFingerprint: Sendable, Hashable, CustomStringConvertible {
    /// The 32 bytes of SHA-256 over the certificate's DER.
    public let sha256: [UInt8]

    /// The fingerprint of a DER certificate.
    public init(certificateDER: some Sequence<UInt8>) {
        sha256 = Array(SHA256.hash(data: Array(certificateDER)))
    }

    /// A fingerprint read from an SDP (32 bytes), nil for any other length.
    public init?(sha256 bytes: [UInt8]) {
        guard bytes.count == SHA256.byteCount else { return nil }
        sha256 = bytes
    }

    /// `sha-256 AB:CD:…`: the value of the SDP's `a=fingerprint:` (uppercase
    /// hex, colon-separated).
    public var sdpValue: String {
        "sha-256 " + sha256.map { byte in
            let hex = String(byte, radix: 16, uppercase: true)
            return hex.count == 1 ? "0" + hex : hex
        }.joined(separator: ":")
    }

    public var description: String { sdpValue }

    /// Compares in constant time: the peer's certificate is attacker input.
    public func matches(_ other: DTLSFingerprint) -> Bool {
        guard sha256.count == other.sha256.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(sha256, other.sha256) { difference |= a ^ b }
        return difference == 0
    }
}

/// The self-signed ECDSA P-256 certificate camflow's DTLS presents. Browsers
/// authenticate it by the fingerprint in the SDP answer, not by a chain or
/// its dates; made once per endpoint.
public struct DTLSCertificate: Sendable {
    /// The certificate, DER.
    public let certificateDER: [UInt8]
    /// Its private key, DER (PKCS#8).
    public let privateKeyDER: [UInt8]
    /// SHA-256 of `certificateDER`.
    public let fingerprint: DTLSFingerprint

    /// - Parameter clock: whose wall time the validity (one day back, 30
    ///   days ahead) starts from.
    public init(commonName: String = "camflow", clock: any PipelineClock = SystemClock()) throws {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName(commonName) }
        let now = Date(timeIntervalSince1970: clock.wallNow)
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-86400), notValidAfter: now.addingTimeInterval(30 * 86400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256, extensions: Certificate.Extensions(),
            issuerPrivateKey: .init(key))
        self.init(certificateDER: try certificate.serializeAsPEM().derBytes, privateKeyDER: Array(key.derRepresentation))
    }

    /// A certificate made elsewhere; OpenSSL checks both when a
    /// `DTLSContext` takes them.
    public init(certificateDER: [UInt8], privateKeyDER: [UInt8]) {
        self.certificateDER = certificateDER
        self.privateKeyDER = privateKeyDER
        fingerprint = DTLSFingerprint(certificateDER: certificateDER)
    }
}
