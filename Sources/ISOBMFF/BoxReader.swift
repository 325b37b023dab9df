import NIOCore

/// A bounds-checked cursor over the content of one box. Every read that
/// would pass the box's end throws a ``ParseError`` naming the stream offset
/// and the box path; nothing is copied.
struct BoxReader {
    /// The bytes; indices are absolute within this buffer.
    let buffer: ByteBuffer
    private(set) var position: Int
    let end: Int
    /// Stream offset of buffer index 0.
    let streamOffset: Int64
    let path: String

    init(buffer: ByteBuffer, range: Range<Int>, streamOffset: Int64, path: String) {
        self.buffer = buffer
        self.position = range.lowerBound
        self.end = range.upperBound
        self.streamOffset = streamOffset
        self.path = path
    }

    var remaining: Int { end - position }
    var isAtEnd: Bool { position >= end }

    func error(_ code: ParseError.Code, _ message: String, at index: Int? = nil) -> ParseError {
        ParseError(code, message, offset: streamOffset + Int64(index ?? position), path: path)
    }

    private mutating func need(_ count: Int, _ what: String) throws(ParseError) {
        guard count <= remaining else {
            throw error(.truncatedBox, "\(path.split(separator: "/").last ?? "box") ends before its \(what)")
        }
    }

    mutating func integer<T: FixedWidthInteger>(_ what: String, as type: T.Type = T.self) throws(ParseError) -> T {
        try need(MemoryLayout<T>.size, what)
        // Bounds were checked above; getInteger cannot fail here.
        let value = buffer.getInteger(at: position, as: T.self) ?? 0
        position += MemoryLayout<T>.size
        return value
    }

    mutating func u8(_ what: String) throws(ParseError) -> UInt8 { try integer(what) }
    mutating func u16(_ what: String) throws(ParseError) -> UInt16 { try integer(what) }
    mutating func u32(_ what: String) throws(ParseError) -> UInt32 { try integer(what) }
    mutating func u64(_ what: String) throws(ParseError) -> UInt64 { try integer(what) }

    mutating func u24(_ what: String) throws(ParseError) -> UInt32 {
        let high = try u8(what)
        let low = try u16(what)
        return UInt32(high) << 16 | UInt32(low)
    }

    mutating func fourCC(_ what: String) throws(ParseError) -> FourCC { FourCC(rawValue: try u32(what)) }

    /// Version and flags of a full box.
    mutating func fullBoxHeader() throws(ParseError) -> (version: UInt8, flags: UInt32) {
        let word = try u32("version and flags")
        return (UInt8(word >> 24), word & 0x00FF_FFFF)
    }

    mutating func skip(_ count: Int, _ what: String) throws(ParseError) {
        try need(count, what)
        position += count
    }

    /// A slice of the next `count` bytes (shares storage).
    mutating func slice(_ count: Int, _ what: String) throws(ParseError) -> ByteBuffer {
        try need(count, what)
        defer { position += count }
        return buffer.getSlice(at: position, length: count) ?? ByteBuffer()
    }

    /// The next child box: its type and a reader over its content. nil at the end.
    mutating func nextChild() throws(ParseError) -> (type: FourCC, reader: BoxReader, start: Int)? {
        guard !isAtEnd else { return nil }
        let start = position
        guard remaining >= 8 else {
            throw error(.truncatedBox, "\(remaining) stray bytes at the end of \(path)")
        }
        let size32 = try u32("child box size")
        let type = try fourCC("child box type")
        var size = Int64(size32)
        if size32 == 1 {
            size = Int64(bitPattern: try u64("64-bit child box size"))
        } else if size32 == 0 {
            size = Int64(end - start)
        }
        let headerSize = position - start
        guard size >= Int64(headerSize), size <= Int64(end - start) else {
            throw error(.invalidBoxHeader,
                        "box '\(type)' claims \(size) bytes but \(path) has \(end - start) left", at: start)
        }
        let childEnd = start + Int(size)
        let child = BoxReader(buffer: buffer, range: position..<childEnd, streamOffset: streamOffset,
                              path: path + "/" + type.description)
        position = childEnd
        return (type, child, start)
    }

    /// The next direct child of `type`, passing over others; nil at the end.
    /// Children are walked one at a time with a copy of the parent as the
    /// cursor, never collected: a hostile box may hold millions of them.
    mutating func nextChild(_ type: FourCC) throws(ParseError) -> BoxReader? {
        while let child = try nextChild() {
            if child.type == type { return child.reader }
        }
        return nil
    }

    /// The first direct child of `type`.
    func child(_ type: FourCC) throws(ParseError) -> BoxReader? {
        var copy = self
        while let child = try copy.nextChild() {
            if child.type == type { return child.reader }
        }
        return nil
    }

    /// The first direct child of `type`, or an error saying it is missing.
    func required(_ type: FourCC) throws(ParseError) -> BoxReader {
        guard let found = try child(type) else {
            throw error(.truncatedBox, "\(path) has no '\(type)' box", at: position)
        }
        return found
    }
}
