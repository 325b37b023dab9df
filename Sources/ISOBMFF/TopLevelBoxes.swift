public import NIOCore

/// Where the top-level boxes of a block of a file end: what a reader needs
/// to cut the file between boxes, so that a parser downstream finds each
/// box whole in one buffer and never copies it together. Reads only box
/// headers. Pure: no I/O.
public enum TopLevelBoxes {
    /// The start of a file or block, as far as its box headers tell.
    public enum Prefix: Equatable, Sendable {
        /// The first `length` bytes are whole boxes (`length` > 0).
        case whole(length: Int)
        /// The first box (or moof + mdat) does not end inside `bytes`: it is
        /// `size` bytes long.
        case firstBoxExceeds(size: Int64)
        /// The bytes do not start with a plausible box header.
        case notBoxes
    }

    /// Box types a fragmented MP4 file starts with.
    public static let fileStarts: Set<FourCC> = [.ftyp, .styp, .moov, .moof, .sidx, .free, .skip]

    /// Whether `bytes` look like the start of a fragmented MP4 file.
    public static func startsFile(_ bytes: ByteBuffer) -> Bool {
        guard let header = header(bytes, at: 0) else { return false }
        return fileStarts.contains(header.type) && header.size >= 8
    }

    /// How many leading bytes of `bytes` are whole top-level boxes. A `moof`
    /// is never cut from the box after it (its `mdat`), nor an `ftyp` from
    /// its `moov`: the parser reads each pair as one unit.
    public static func wholePrefix(of bytes: ByteBuffer) -> Prefix {
        var end = 0
        var cut = 0
        while let header = header(bytes, at: end) {
            // Size 0 means "to the end of the file": the rest cannot be cut.
            guard header.size >= Int64(header.headerSize), header.type.isPrintable else { break }
            guard header.size <= Int64(bytes.readableBytes - end) else {
                // The unit at the start (a moof and its mdat, say) does not fit.
                // Saturating: a 64-bit size may be as large as Int64.max.
                let (unit, overflow) = Int64(end).addingReportingOverflow(header.size)
                return cut > 0 ? .whole(length: cut) : .firstBoxExceeds(size: overflow ? .max : unit)
            }
            end += Int(header.size)
            if header.type != .moof && header.type != .ftyp { cut = end }
        }
        if cut > 0 { return .whole(length: cut) }
        return end > 0 ? .whole(length: end) : .notBoxes
    }

    /// The size (64-bit sizes read), header length and type of the box at `offset`.
    private static func header(_ bytes: ByteBuffer, at offset: Int) -> (size: Int64, headerSize: Int, type: FourCC)? {
        let start = bytes.readerIndex + offset
        guard bytes.readableBytes - offset >= 8,
              let size32 = bytes.getInteger(at: start, as: UInt32.self),
              let type = bytes.getInteger(at: start + 4, as: UInt32.self) else { return nil }
        guard size32 == 1 else { return (Int64(size32), 8, FourCC(rawValue: type)) }
        guard bytes.readableBytes - offset >= 16, let size64 = bytes.getInteger(at: start + 8, as: UInt64.self) else {
            return nil
        }
        return (Int64(clamping: size64), 16, FourCC(rawValue: type))
    }
}
