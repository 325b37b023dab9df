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
    /// Limits that protect memory and time from hostile input.
    public struct Configuration: Sendable {
        /// The largest box buffered whole (moov, moof, moof + mdat each count),
        /// and the largest box skipped unread: anything larger is taken for
        /// corruption and the parser looks for the next plausible box.
        public var maxBoxSize: Int
        /// The most samples one fragment may declare, across all its truns.
        public var maxSamplesPerFragment: Int
        /// The most tracks an init segment may declare.
        public var maxTracks: Int

        public init(maxBoxSize: Int = 64 << 20, maxSamplesPerFragment: Int = 1 << 16, maxTracks: Int = 64) {
            self.maxBoxSize = maxBoxSize
            self.maxSamplesPerFragment = maxSamplesPerFragment
            self.maxTracks = maxTracks
        }
    }

    /// What the stream held next.
    public enum Item: Sendable {
        case initSegment(InitSegment)
        case fragment(Fragment)
        /// A box passed over: its type, size (-1: to the end of the stream) and stream offset.
        case skipped(type: FourCC, size: Int64, offset: Int64)
    }

    public let configuration: Configuration
    /// The latest init segment; fragments are read against it.
    public private(set) var initSegment: InitSegment?
    /// Stream offset of the next unread byte.
    public private(set) var offset: Int64 = 0

    /// The next unread bytes, contiguous. Either a chunk as appended (no
    /// copy), or a buffer of this parser's own that gathers a box which
    /// arrived in pieces.
    var buffer = ByteBuffer()
    /// Chunks appended but not yet needed, in order. They are merged into
    /// `buffer` only when a box spans them, and then only up to its end, so
    /// the parser holds no more than the box in flight and the chunk it
    /// came with, however long the stream.
    var pending = CircularBuffer<ByteBuffer>()
    var pendingBytes = 0
    /// Bytes still to drop of a box being skipped.
    var skipRemaining: Int64 = 0
    var pendingFtyp: (bytes: ByteBuffer, offset: Int64, headerSize: Int)?
    var resynchronizing = false
    var nextDTS: [UInt32: Int64] = [:]
    /// Bytes the box being read needs in all: until that many are held,
    /// `next()` answers at once (a box arriving a byte at a time costs a
    /// comparison per byte, not a re-read of its header).
    var waitingFor = 0

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// A parser that reads fragments against a known init segment.
    init(initSegment: InitSegment, configuration: Configuration) {
        self.configuration = configuration
        self.initSegment = initSegment
    }

    /// Bytes held waiting for the rest of a box.
    public var bufferedBytes: Int { buffer.readableBytes + pendingBytes }

    /// Bytes of storage the parser itself keeps alive: the chunk being read
    /// and any box being gathered. It depends on the largest box in flight,
    /// never on how long the stream has run.
    public var retainedBytes: Int { buffer.capacity + pendingBytes }

    /// Adds the next chunk of the stream. The chunk is kept as it is (its
    /// storage is shared, not copied) until boxes are cut out of it.
    public mutating func append(_ chunk: ByteBuffer) {
        guard chunk.readableBytes > 0 else { return }
        if buffer.readableBytes == 0, pending.isEmpty {
            buffer = chunk
        } else {
            pending.append(chunk)
            pendingBytes += chunk.readableBytes
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
        offset += Int64(bufferedBytes)
        buffer = ByteBuffer()
        pending.removeAll()
        pendingBytes = 0
        waitingFor = 0
        skipRemaining = 0
        pendingFtyp = nil
        resynchronizing = true
    }

    /// The end of the stream: an error if it stopped inside a box.
    public func finish() throws(ParseError) {
        if skipRemaining > 0 {
            throw ParseError(.truncatedStream, "the stream ended \(skipRemaining) bytes short of the end of a skipped box",
                             offset: offset, path: "")
        }
        if bufferedBytes > 0, !resynchronizing {
            throw ParseError(.truncatedStream, "the stream ended inside a box (\(bufferedBytes) bytes left over)",
                             offset: offset, path: "")
        }
    }

    /// The next result, or nil when more bytes are needed.
    public mutating func next() throws(ParseError) -> Item? {
        while true {
            if skipRemaining > 0 {
                skipRemaining -= Int64(discard(upTo: skipRemaining))
                if skipRemaining > 0 { return nil }
            }
            if resynchronizing {
                guard scanForBoxStart() else { return nil }
                resynchronizing = false
            }
            if waitingFor > 0 {
                guard bufferedBytes >= waitingFor else { return nil }
                waitingFor = 0
            }
            guard gather(8) else { return nil }
            let start = buffer.readerIndex
            let size32 = buffer.getInteger(at: start, as: UInt32.self) ?? 0
            let type = FourCC(rawValue: buffer.getInteger(at: start + 4, as: UInt32.self) ?? 0)
            var size = Int64(size32)
            var headerSize = 8
            guard type.isPrintable else {
                throw failAndResync(.invalidBoxHeader, "bytes \(hexPreview()) are not a box header", path: "")
            }
            if size32 == 1 {
                guard gather(16) else { return nil }
                // A largesize past Int64.max is as implausible as one just below it.
                size = Int64(clamping: buffer.getInteger(at: buffer.readerIndex + 8, as: UInt64.self) ?? 0)
                headerSize = 16
            }
            if size32 == 0 {
                // "To the end of the file": legal only for a last mdat. A live
                // stream has no end, so rather than go blind the parser looks
                // for the next box start inside it.
                guard type == .mdat else {
                    throw failAndResync(.invalidBoxHeader, "box '\(type)' has size 0, allowed only for a final mdat",
                                        path: type.description)
                }
                let boxOffset = offset
                discardWithinBuffer(8)
                resynchronizing = true
                return .skipped(type: type, size: -1, offset: boxOffset)
            }
            guard size >= Int64(headerSize) else {
                throw failAndResync(.invalidBoxHeader, "box '\(type)' claims \(size) bytes, less than its header",
                                    path: type.description)
            }
            guard size <= Int64(configuration.maxBoxSize) else {
                throw failAndResync(.boxTooLarge,
                                    "box '\(type)' claims \(size) bytes, more than max-box-size (\(configuration.maxBoxSize))",
                                    path: type.description)
            }
            switch type {
            case .ftyp, .styp, .moov, .sidx, .moof:
                if type == .moof {
                    // nil: the fragment is not all here yet.
                    return try fragment(moofSize: Int(size), headerSize: headerSize)
                }
                guard gather(Int(size)) else { return nil }
                let boxOffset = offset
                let box = takeSlice(Int(size))
                let reader = BoxReader(buffer: box, range: (box.readerIndex + headerSize)..<box.writerIndex,
                                       streamOffset: boxOffset - Int64(box.readerIndex), path: type.description)
                switch type {
                case .ftyp:
                    pendingFtyp = (box, boxOffset, headerSize)
                    continue
                case .moov:
                    let ftyp = pendingFtyp
                    pendingFtyp = nil
                    let bytes = ftyp.map { Self.join($0.bytes, box) } ?? box
                    let ftypReader = ftyp.map {
                        BoxReader(buffer: $0.bytes, range: ($0.bytes.readerIndex + $0.headerSize)..<$0.bytes.writerIndex,
                                  streamOffset: $0.offset - Int64($0.bytes.readerIndex), path: "ftyp")
                    }
                    let parsed = try InitSegment.parse(moov: reader, ftyp: ftypReader, bytes: bytes,
                                                       maxTracks: configuration.maxTracks)
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

    /// moof + the mdat after it, once both are here.
    mutating func fragment(moofSize: Int, headerSize: Int) throws(ParseError) -> Item? {
        guard gather(moofSize + 8) else { return nil }
        let mdatStart = buffer.readerIndex + moofSize
        let mdatSize32 = buffer.getInteger(at: mdatStart, as: UInt32.self) ?? 0
        let mdatType = FourCC(rawValue: buffer.getInteger(at: mdatStart + 4, as: UInt32.self) ?? 0)
        guard mdatType == .mdat else {
            throw failAndSkip(Int64(moofSize), .invalidField, "moof is followed by '\(mdatType)', not mdat", path: "moof")
        }
        var mdatSize = Int64(mdatSize32)
        var mdatHeader = 8
        if mdatSize32 == 1 {
            guard gather(moofSize + 16) else { return nil }
            mdatSize = Int64(clamping: buffer.getInteger(at: buffer.readerIndex + moofSize + 8, as: UInt64.self) ?? 0)
            mdatHeader = 16
        }
        guard mdatSize >= Int64(mdatHeader), mdatSize32 != 0 else {
            throw failAndSkip(Int64(moofSize), .invalidBoxHeader, "the mdat after a moof claims \(mdatSize) bytes",
                              path: "mdat")
        }
        // moofSize is at most maxBoxSize, so this sum cannot overflow before the comparison.
        guard mdatSize <= Int64(configuration.maxBoxSize) - Int64(moofSize) else {
            throw failAndSkip(Int64(moofSize), .boxTooLarge,
                              "fragment (moof + mdat of \(mdatSize) bytes) is larger than max-box-size (\(configuration.maxBoxSize))",
                              path: "mdat")
        }
        let total = moofSize + Int(mdatSize)
        guard gather(total) else { return nil }
        guard let initSegment else {
            throw failAndSkip(Int64(total), .fragmentBeforeInit, "a fragment (moof) arrived before any init segment (moov)",
                              path: "moof")
        }
        let fragmentOffset = offset
        // Taken whether or not it parses: after an error the next call goes on after it.
        let bytes = takeSlice(total)
        let start = bytes.readerIndex
        let moof = BoxReader(buffer: bytes, range: (start + headerSize)..<(start + moofSize),
                             streamOffset: fragmentOffset - Int64(start), path: "moof")
        let payload = (start + moofSize + mdatHeader)..<(start + total)
        return .fragment(try Fragment.parse(moof: moof, moofStart: start, mdatPayload: payload, bytes: bytes,
                                            initSegment: initSegment, maxSamples: configuration.maxSamplesPerFragment,
                                            nextDTS: &nextDTS))
    }

    // MARK: Buffering

    /// Makes the first `count` unread bytes contiguous in `buffer`, if that
    /// many have arrived; false when more are needed. Bytes are copied only
    /// when a box spans chunks, once, into a buffer of exactly its size.
    mutating func gather(_ count: Int) -> Bool {
        if buffer.readableBytes >= count { return true }
        guard buffer.readableBytes + pendingBytes >= count else {
            waitingFor = count
            return false
        }
        if buffer.readableBytes == 0 {
            buffer = pending.removeFirst()
            pendingBytes -= buffer.readableBytes
            if buffer.readableBytes >= count { return true }
        }
        var gathered = ByteBufferAllocator().buffer(capacity: count)
        gathered.writeBuffer(&buffer)
        while gathered.readableBytes < count {
            var chunk = pending.removeFirst()
            pendingBytes -= chunk.readableBytes
            let wanted = count - gathered.readableBytes
            if chunk.readableBytes > wanted, var head = chunk.readSlice(length: wanted) {
                gathered.writeBuffer(&head)
                pending.prepend(chunk)
                pendingBytes += chunk.readableBytes
            } else {
                gathered.writeBuffer(&chunk)
            }
        }
        buffer = gathered
        return true
    }

    /// The next `count` bytes, which `gather` made contiguous, as a slice.
    mutating func takeSlice(_ count: Int) -> ByteBuffer {
        let slice = buffer.readSlice(length: count) ?? ByteBuffer()
        offset += Int64(count)
        refill()
        return slice
    }

    /// Drops up to `count` unread bytes without gathering them; returns how many.
    mutating func discard(upTo count: Int64) -> Int64 {
        var dropped: Int64 = 0
        while dropped < count, buffer.readableBytes > 0 {
            let step = Int(min(count - dropped, Int64(buffer.readableBytes)))
            discardWithinBuffer(step)
            dropped += Int64(step)
        }
        return dropped
    }

    mutating func discardWithinBuffer(_ count: Int) {
        buffer.moveReaderIndex(forwardBy: count)
        offset += Int64(count)
        refill()
    }

    /// Once `buffer` is used up, the next pending chunk takes its place, and
    /// the used-up storage is released.
    mutating func refill() {
        guard buffer.readableBytes == 0 else { return }
        if let next = pending.popFirst() {
            pendingBytes -= next.readableBytes
            buffer = next
        } else {
            buffer = ByteBuffer()
        }
    }
}
