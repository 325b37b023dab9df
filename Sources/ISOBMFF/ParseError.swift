/// Why the stream could not be parsed, and where: the absolute byte offset
/// in the stream and the path of boxes down to the problem.
public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// A box header that cannot be right (size smaller than its header, unprintable type).
        case invalidBoxHeader = "invalid-box-header"
        /// A box larger than the configured `maxBoxSize`.
        case boxTooLarge = "box-too-large"
        /// A box's content ends before a field it must have.
        case truncatedBox = "truncated-box"
        /// A field holds a value the format does not allow.
        case invalidField = "invalid-field"
        /// A fragment arrived before any init segment (moov) told what its tracks are.
        case fragmentBeforeInit = "fragment-before-init"
        /// A track fragment names a track the init segment does not have.
        case unknownTrack = "unknown-track"
        /// A trun's samples lie outside the mdat that follows the moof.
        case sampleOutsideMdat = "sample-outside-mdat"
        /// The stream ended inside a box.
        case truncatedStream = "truncated-stream"
    }

    public let code: Code
    public let message: String
    /// Absolute offset in the stream of the byte where the problem is.
    public let offset: Int64
    /// Boxes from the top level down, such as `moof/traf/trun`.
    public let path: String

    public init(_ code: Code, _ message: String, offset: Int64, path: String) {
        self.code = code
        self.message = message
        self.offset = offset
        self.path = path
    }

    public var description: String {
        "\(message) (\(code.rawValue) at byte \(offset)\(path.isEmpty ? "" : " in \(path)"))"
    }
}
