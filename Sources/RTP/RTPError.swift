/// Why bytes could not be read as RTP, or a value could not be written as
/// RTP: what was wrong and at which byte of the packet or payload.
public struct RTPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of refusal, stable for tests and metrics.
    public enum Code: String, Sendable {
        /// Fewer bytes than a field needs.
        case truncated
        /// An RTP version other than 2.
        case badVersion = "bad-version"
        /// A padding count of zero or larger than the payload.
        case badPadding = "bad-padding"
        /// A header extension running past the packet.
        case badExtension = "bad-extension"
        /// A payload whose structure its format does not allow.
        case invalidPayload = "invalid-payload"
        /// A value larger than its field or a configured bound.
        case tooLarge = "too-large"
        /// A caller-supplied value out of range (MTU, NAL length size).
        case invalidArgument = "invalid-argument"
    }

    public let code: Code
    public let message: String
    /// Byte offset in the packet or payload where the problem is.
    public let offset: Int

    public init(_ code: Code, _ message: String, offset: Int = 0) {
        self.code = code
        self.message = message
        self.offset = offset
    }

    public var description: String { "\(message) (\(code.rawValue) at byte \(offset))" }
}
