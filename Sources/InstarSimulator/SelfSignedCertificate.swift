public import Camflow
import Crypto
import Foundation
import SwiftASN1
import X509

/// A fresh self-signed certificate for `localhost` and `127.0.0.1`, as a
/// camera ships with: the simulator's `--tls`, and what clients trust with
/// `ca-file`.
public struct SelfSignedCertificate: Sendable {
    /// The certificate, PEM.
    public let certificatePEM: String
    /// Its private key, PEM.
    public let privateKeyPEM: String

    /// - Parameter clock: whose wall time the validity starts from.
    public init(commonName: String = "camflow camera simulator", clock: any PipelineClock = SystemClock()) throws {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName(commonName) }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
            SubjectAlternativeNames([
                .dnsName("localhost"),
                .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
            ])
        }
        let now = Date(timeIntervalSince1970: clock.wallNow)
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(365 * 86400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
            issuerPrivateKey: .init(key))
        certificatePEM = try certificate.serializeAsPEM().pemString
        privateKeyPEM = key.pemRepresentation
    }
}
