public import NIOCore

// Whole init segments and fragments, as `init` and `fragment` packets carry
// them, parsed by the same streaming parser that reads a live stream.

extension InitSegment {
    /// Parses a whole init segment (ftyp + moov, as an `init` packet carries).
    public init(parsing bytes: ByteBuffer) throws(ParseError) {
        var parser = StreamingParser(configuration: .init(maxBoxSize: max(bytes.readableBytes, 1)))
        parser.append(bytes)
        while let item = try parser.next() {
            if case .initSegment(let segment) = item {
                self = segment
                return
            }
        }
        throw ParseError(.truncatedStream, "no moov in \(bytes.readableBytes) bytes of init segment", offset: 0, path: "")
    }
}

extension Fragment {
    /// Parses a whole fragment (moof + mdat, as a `fragment` packet carries)
    /// against `initSegment`. Decode times come from `tfdt` (0 without one).
    public init(parsing bytes: ByteBuffer, initSegment: InitSegment) throws(ParseError) {
        var parser = StreamingParser(initSegment: initSegment,
                                     configuration: .init(maxBoxSize: max(bytes.readableBytes, 1)))
        parser.append(bytes)
        while let item = try parser.next() {
            if case .fragment(let fragment) = item {
                self = fragment
                return
            }
        }
        throw ParseError(.truncatedStream, "no moof + mdat in \(bytes.readableBytes) bytes of fragment", offset: 0, path: "")
    }
}
