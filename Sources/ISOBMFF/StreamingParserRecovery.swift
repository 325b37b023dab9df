import NIOCore

/// What the parser does with a stream it cannot read: report, skip the box,
/// or scan for the next plausible box start.
extension StreamingParser {
    // MARK: Errors and resynchronisation

    /// Reports a problem and skips the whole box of `size` bytes at the read position.
    mutating func failAndSkip(_ size: Int64, _ code: ParseError.Code, _ message: String,
                                      path: String) -> ParseError {
        let error = ParseError(code, message, offset: offset, path: path)
        skipRemaining = size
        return error
    }

    /// Reports a problem and scans for the next plausible box start.
    mutating func failAndResync(_ code: ParseError.Code, _ message: String, path: String) -> ParseError {
        let error = ParseError(code, message, offset: offset, path: path)
        discardWithinBuffer(1)
        resynchronizing = true
        return error
    }

    /// Moves to the next `ftyp`, `styp`, `moov` or `moof` whose size looks
    /// plausible. Keeps the last 7 bytes when none is found: a header may be
    /// cut by the chunk boundary.
    mutating func scanForBoxStart() -> Bool {
        let maxBoxSize = UInt64(configuration.maxBoxSize)
        while true {
            if buffer.readableBytes < 8 {
                // The few bytes left may start a header that the next chunk completes. They are
                // moved to the front and the chunk added behind them, in place once the buffer is
                // the parser's own: garbage arriving a byte at a time costs no allocation per byte.
                guard var next = pending.popFirst() else { return false }
                pendingBytes -= next.readableBytes
                if buffer.readableBytes == 0 {
                    buffer = next
                } else {
                    buffer.discardReadBytes()
                    buffer.writeBuffer(&next)
                }
                if buffer.readableBytes < 8 { continue }
            }
            let found: Int? = buffer.withUnsafeReadableBytes { bytes in
                var index = 4
                while index + 4 <= bytes.count {
                    let type = UInt32(bytes[index]) << 24 | UInt32(bytes[index + 1]) << 16
                        | UInt32(bytes[index + 2]) << 8 | UInt32(bytes[index + 3])
                    if type == FourCC.moof.rawValue || type == FourCC.moov.rawValue
                        || type == FourCC.ftyp.rawValue || type == FourCC.styp.rawValue {
                        let size = UInt64(bytes[index - 4]) << 24 | UInt64(bytes[index - 3]) << 16
                            | UInt64(bytes[index - 2]) << 8 | UInt64(bytes[index - 1])
                        if size == 1 || (size >= 8 && size <= maxBoxSize) { return index - 4 }
                    }
                    index += 1
                }
                return nil
            }
            if let found {
                discardWithinBuffer(found)
                return true
            }
            discardWithinBuffer(buffer.readableBytes - 7)
            if pending.isEmpty { return false }
        }
    }

    func hexPreview() -> String {
        let bytes = buffer.getBytes(at: buffer.readerIndex, length: min(8, buffer.readableBytes)) ?? []
        return bytes.map(hex).joined(separator: " ")
    }

    /// ftyp and moov as one buffer. Init segments are rare (one per connection): a copy is fine.
    static func join(_ first: ByteBuffer, _ second: ByteBuffer) -> ByteBuffer {
        var joined = ByteBuffer()
        joined.reserveCapacity(first.readableBytes + second.readableBytes)
        joined.writeImmutableBuffer(first)
        joined.writeImmutableBuffer(second)
        return joined
    }
}
