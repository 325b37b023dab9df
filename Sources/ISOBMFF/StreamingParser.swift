public import NIOCore

/// An incremental parser of a fragmented MP4 byte stream. Feed it chunks cut
/// anywhere with ``append(_:)``; pull results with ``next()``. The results are
/// the same however the stream is cut.
///
/// Boxes that arrive whole inside one chunk come out as slices of it (no
/// copy); a box split across chunks is gathered into one buffer first. Boxes
/// nobody needs (mdat outside a fragment, free, unknown types) are skipped as
/// they stream past, without being buffered.
///
/// After ``next()`` throws, the next call carries on: a box with a known type
/// and a plausible size is skipped whole, otherwise the parser scans for the
/// next `ftyp`, `styp`, `moov` or `moof` header.
public struct StreamingParser: Sendable {
    /// Limits that protect memory from hostile input.
    public struct Configuration: Sendable {
        /// The largest box buffered whole (moov, moof, moof + mdat each count).
        public var maxBoxSize: Int
        public init(maxBoxSize: Int = 64 << 20) { self.maxBoxSize = maxBoxSize }
    }

    /// What the stream held next.
    public enum Item: Sendable {
        case initSegment(InitSegment)
        case fragment(Fragment)
        /// A box passed over: its type, size and stream offset.
        case skipped(type: FourCC, size: Int64, offset: Int64)
    }

    public let configuration: Configuration
    /// The latest init segment; fragments are read against it.
    public private(set) var initSegment: InitSegment?
    /// Stream offset of the next unread byte.
    public private(set) var offset: Int64 = 0

    private var buffer = ByteBuffer()
    /// Bytes still to drop of a box being skipped.
    private var skipRemaining: Int64 = 0
    private var pendingFtyp: (bytes: ByteBuffer, offset: Int64)?
    private var resynchronizing = false
    private var nextDTS: [UInt32: Int64] = [:]

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// A parser that reads fragments against a known init segment.
    init(initSegment: InitSegment, maxBoxSize: Int) {
        self.configuration = Configuration(maxBoxSize: maxBoxSize)
        self.initSegment = initSegment
    }

    /// Bytes held waiting for the rest of a box.
    public var bufferedBytes: Int { buffer.readableBytes }

    /// Adds the next chunk of the stream.
    public mutating func append(_ chunk: ByteBuffer) {
        if buffer.readableBytes == 0 {
            buffer = chunk
        } else {
            var chunk = chunk
            buffer.writeBuffer(&chunk)
        }
    }

    /// Forgets everything, init segment included: the stream starts over
    /// (a reconnect). Offsets restart at 0.
    public mutating func reset() {
        self = StreamingParser(configuration: configuration)
    }

    /// Drops buffered bytes and looks for the next box that can start a
    /// fragment or an init segment, keeping the init segment: for a gap in
    /// the middle of a stream (bytes dropped upstream).
    public mutating func resynchronize() {
        offset += Int64(buffer.readableBytes)
        buffer.clear()
        skipRemaining = 0
        pendingFtyp = nil
        resynchronizing = true
    }

    /// The end of the stream: an error if it stopped inside a box.
    public func finish() throws(ParseError) {
        guard buffer.readableBytes > 0 || skipRemaining > 0 else { return }
        if skipRemaining > 0, skipRemaining != .max {
            throw ParseError(.truncatedStream, "the stream ended \(skipRemaining) bytes short of the end of a skipped box",
                             offset: offset, path: "")
        }
        if buffer.readableBytes > 0, !resynchronizing {
            throw ParseError(.truncatedStream, "the stream ended inside a box (\(buffer.readableBytes) bytes left over)",
                             offset: offset, path: "")
        }
    }

    /// The next result, or nil when more bytes are needed.
    public mutating func next() throws(ParseError) -> Item? {
        while true {
            if skipRemaining > 0 {
                let count = Int(min(skipRemaining, Int64(buffer.readableBytes)))
                consume(count)
                if skipRemaining != .max { skipRemaining -= Int64(count) }
                if skipRemaining > 0 { return nil }
            }
            if resynchronizing {
                guard scanForBoxStart() else { return nil }
                resynchronizing = false
            }
            guard buffer.readableBytes >= 8 else { return nil }
            let start = buffer.readerIndex
            let size32 = buffer.getInteger(at: start, as: UInt32.self) ?? 0
            let type = FourCC(rawValue: buffer.getInteger(at: start + 4, as: UInt32.self) ?? 0)
            var size = Int64(size32)
            var headerSize = 8
            if size32 == 1 {
                guard buffer.readableBytes >= 16 else { return nil }
                size = Int64(bitPattern: buffer.getInteger(at: start + 8, as: UInt64.self) ?? 0)
                headerSize = 16
            }
            guard type.isPrintable else {
                throw failAndResync(.invalidBoxHeader, "bytes \(hexPreview(start)) are not a box header", path: "")
            }
            if size32 == 0 {
                // Legal only for a last box that runs to the end of the file.
                guard type == .mdat else {
                    throw failAndResync(.invalidBoxHeader, "box '\(type)' has size 0, allowed only for a final mdat",
                                        path: type.description)
                }
                let boxOffset = offset
                skipRemaining = .max
                return .skipped(type: type, size: -1, offset: boxOffset)
            }
            guard size >= Int64(headerSize) else {
                throw failAndResync(.invalidBoxHeader, "box '\(type)' claims \(size) bytes, less than its header",
                                    path: type.description)
            }
            switch type {
            case .ftyp, .styp, .moov, .sidx, .moof:
                guard size <= Int64(configuration.maxBoxSize) else {
                    throw failAndSkip(size, .boxTooLarge,
                                      "box '\(type)' claims \(size) bytes, more than max-box-size (\(configuration.maxBoxSize))",
                                      path: type.description)
                }
                if type == .moof {
                    // nil: the fragment is not all here yet.
                    return try fragment(moofSize: Int(size), headerSize: headerSize)
                }
                guard buffer.readableBytes >= Int(size) else {
                    reserve(Int(size))
                    return nil
                }
                let boxOffset = offset
                let box = buffer.getSlice(at: start, length: Int(size)) ?? ByteBuffer()
                let reader = reader(for: start, headerSize: headerSize, size: Int(size), path: type.description)
                consume(Int(size))
                switch type {
                case .ftyp:
                    pendingFtyp = (box, boxOffset)
                    continue
                case .moov:
                    let ftyp = pendingFtyp
                    pendingFtyp = nil
                    let bytes = ftyp.map { Self.join($0.bytes, box) } ?? box
                    let ftypReader = ftyp.map {
                        BoxReader(buffer: $0.bytes, range: ($0.bytes.readerIndex + 8)..<$0.bytes.writerIndex,
                                  streamOffset: $0.offset - Int64($0.bytes.readerIndex), path: "ftyp")
                    }
                    let parsed = try InitSegment.parse(moov: reader, ftyp: ftypReader, bytes: bytes)
                    initSegment = parsed
                    nextDTS = [:]
                    return .initSegment(parsed)
                default:
                    return .skipped(type: type, size: size, offset: boxOffset)
                }
            default:
                // mdat without a moof, free, skip, unknown: let it stream past.
                let boxOffset = offset
                skipRemaining = size
                return .skipped(type: type, size: size, offset: boxOffset)
            }
        }
    }

    /// moof + the mdat after it, once both are buffered.
    private mutating func fragment(moofSize: Int, headerSize: Int) throws(ParseError) -> Item? {
        let start = buffer.readerIndex
        guard buffer.readableBytes >= moofSize + 8 else {
            reserve(moofSize + 16)
            return nil
        }
        let mdatStart = start + moofSize
        let mdatSize32 = buffer.getInteger(at: mdatStart, as: UInt32.self) ?? 0
        let mdatType = FourCC(rawValue: buffer.getInteger(at: mdatStart + 4, as: UInt32.self) ?? 0)
        guard mdatType == .mdat else {
            throw failAndSkip(Int64(moofSize), .invalidField, "moof is followed by '\(mdatType)', not mdat", path: "moof")
        }
        var mdatSize = Int64(mdatSize32)
        var mdatHeader = 8
        if mdatSize32 == 1 {
            guard buffer.readableBytes >= moofSize + 16 else { return nil }
            mdatSize = Int64(bitPattern: buffer.getInteger(at: mdatStart + 8, as: UInt64.self) ?? 0)
            mdatHeader = 16
        }
        guard mdatSize >= Int64(mdatHeader), mdatSize32 != 0 else {
            throw failAndSkip(Int64(moofSize), .invalidBoxHeader, "the mdat after a moof claims \(mdatSize) bytes",
                              path: "mdat")
        }
        let total = Int64(moofSize) + mdatSize
        guard total <= Int64(configuration.maxBoxSize) else {
            throw failAndSkip(total, .boxTooLarge,
                              "fragment (moof + mdat) of \(total) bytes is larger than max-box-size (\(configuration.maxBoxSize))",
                              path: "mdat")
        }
        guard buffer.readableBytes >= Int(total) else {
            reserve(Int(total))
            return nil
        }
        guard let initSegment else {
            throw failAndSkip(total, .fragmentBeforeInit, "a fragment (moof) arrived before any init segment (moov)",
                              path: "moof")
        }
        let moof = reader(for: start, headerSize: headerSize, size: moofSize, path: "moof")
        let bytes = buffer.getSlice(at: start, length: Int(total)) ?? ByteBuffer()
        let payload = (mdatStart + mdatHeader)..<(start + Int(total))
        // Consumed whether or not it parses: after an error the next call goes on after it.
        consume(Int(total))
        return .fragment(try Fragment.parse(moof: moof, moofStart: start, mdatPayload: payload, bytes: bytes,
                                            initSegment: initSegment, nextDTS: &nextDTS))
    }

    private func reader(for start: Int, headerSize: Int, size: Int, path: String) -> BoxReader {
        BoxReader(buffer: buffer, range: (start + headerSize)..<(start + size),
                  streamOffset: offset - Int64(buffer.readerIndex), path: path)
    }

    private mutating func consume(_ count: Int) {
        buffer.moveReaderIndex(forwardBy: count)
        offset += Int64(count)
        if buffer.readableBytes == 0 { buffer = ByteBuffer() }
    }

    /// Room for a whole box, so gathering it does not reallocate per chunk.
    private mutating func reserve(_ size: Int) {
        let missing = size - buffer.readableBytes
        if missing > 0, buffer.writableBytes < missing {
            buffer.reserveCapacity(minimumWritableBytes: missing)
        }
    }

    /// Reports a problem and skips the whole box of `size` bytes at the read position.
    private mutating func failAndSkip(_ size: Int64, _ code: ParseError.Code, _ message: String,
                                      path: String) -> ParseError {
        let error = ParseError(code, message, offset: offset, path: path)
        skipRemaining = size
        return error
    }

    /// Reports a problem and scans for the next plausible box start.
    private mutating func failAndResync(_ code: ParseError.Code, _ message: String, path: String) -> ParseError {
        let error = ParseError(code, message, offset: offset, path: path)
        consume(1)
        resynchronizing = true
        return error
    }

    /// Moves to the next `ftyp`, `styp`, `moov` or `moof` whose size looks
    /// right. Keeps the last 7 bytes when none is found: a header may be
    /// cut by the chunk boundary.
    private mutating func scanForBoxStart() -> Bool {
        let starts: Set<UInt32> = [FourCC.ftyp.rawValue, FourCC.styp.rawValue, FourCC.moov.rawValue, FourCC.moof.rawValue]
        let found: Int? = buffer.withUnsafeReadableBytes { bytes in
            guard bytes.count >= 8 else { return nil }
            var index = 4
            while index + 4 <= bytes.count {
                let type = UInt32(bytes[index]) << 24 | UInt32(bytes[index + 1]) << 16
                    | UInt32(bytes[index + 2]) << 8 | UInt32(bytes[index + 3])
                if starts.contains(type) {
                    let size = UInt32(bytes[index - 4]) << 24 | UInt32(bytes[index - 3]) << 16
                        | UInt32(bytes[index - 2]) << 8 | UInt32(bytes[index - 1])
                    if size >= 8 || size == 1 { return index - 4 }
                }
                index += 1
            }
            return nil
        }
        if let found {
            consume(found)
            return true
        }
        let keep = min(buffer.readableBytes, 7)
        consume(buffer.readableBytes - keep)
        return false
    }

    private func hexPreview(_ start: Int) -> String {
        let bytes = buffer.getBytes(at: start, length: min(8, buffer.readableBytes)) ?? []
        return bytes.map(hex).joined(separator: " ")
    }

    /// ftyp and moov as one buffer. Init segments are rare (one per connection): a copy is fine.
    private static func join(_ first: ByteBuffer, _ second: ByteBuffer) -> ByteBuffer {
        var joined = ByteBuffer()
        joined.reserveCapacity(first.readableBytes + second.readableBytes)
        joined.writeImmutableBuffer(first)
        joined.writeImmutableBuffer(second)
        return joined
    }
}

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
        var parser = StreamingParser(initSegment: initSegment, maxBoxSize: max(bytes.readableBytes, 1))
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
