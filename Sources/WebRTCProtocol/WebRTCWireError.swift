/// Why bytes could not be read as STUN, RTCP or an SDP offer, or why an
/// offer cannot be answered: what was wrong and where (a byte offset in the
/// message, or in the offer's text).
public struct WebRTCWireError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of refusal, stable for tests, metrics and HTTP answers.
    public enum Code: String, Sendable {
        /// Fewer bytes than a field needs.
        case truncated
        /// A header that is not this format's (STUN's top bits or magic cookie, RTCP's version).
        case badHeader = "bad-header"
        /// A length field that disagrees with the bytes.
        case badLength = "bad-length"
        /// An attribute, packet or line whose content its format does not allow.
        case malformed
        /// More bytes, attributes, packets, lines or sections than the bound.
        case tooLarge = "too-large"
        /// MESSAGE-INTEGRITY missing or wrong.
        case integrity
        /// FINGERPRINT wrong.
        case fingerprint
        /// USERNAME missing or not `<local ufrag>:<remote ufrag>`.
        case username
        /// A peer that claims the controlled role too (ICE-CONTROLLED to a lite agent): answer 487.
        case roleConflict = "role-conflict"
        /// Not a Binding request.
        case notBindingRequest = "not-binding-request"
        /// An offer without `a=ice-ufrag` / `a=ice-pwd`.
        case missingICECredentials = "missing-ice-credentials"
        /// An offer without an `a=fingerprint:sha-256`.
        case missingFingerprint = "missing-fingerprint"
        /// An offer with `a=setup:passive`: camflow is always the DTLS server.
        case setupPassive = "setup-passive"
        /// An offer without `a=rtcp-mux`: camflow has one port for RTP and RTCP.
        case missingRTCPMux = "missing-rtcp-mux"
        /// An offer with no video section camflow can send into.
        case noUsableVideo = "no-usable-video"
        /// An offer with no payload type for the stream's codec camflow can packetize.
        case noUsableCodec = "no-usable-codec"
        /// A caller-supplied value out of range (credentials, addresses, attribute text).
        case invalidArgument = "invalid-argument"
    }

    public let code: Code
    public let message: String
    /// Byte offset in the message or text where the problem is.
    public let offset: Int

    public init(_ code: Code, _ message: String, offset: Int = 0) {
        self.code = code
        self.message = message
        self.offset = offset
    }

    /// What an HTTP server answers an offer refused for this reason: 406 when
    /// the offer is well-formed but names no codec camflow can send, else 400.
    public var httpStatus: Int {
        switch code {
        case .noUsableCodec, .noUsableVideo: 406
        default: 400
        }
    }

    public var description: String { "\(message) (\(code.rawValue) at byte \(offset))" }
}
