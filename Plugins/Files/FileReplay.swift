public import Camflow
import ISOBMFF
import NIOCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `file-replay`: reads a file and emits it as `bytes` packets, once or in a
/// loop, optionally paced to a byte rate.
public struct FileReplay: Node {
    static let type = NodeType(
        name: "file-replay",
        summary: "Reads a file and emits it as bytes packets, optionally looped and rate-limited.",
        details: """
            Reads the file in large blocks and emits slices that share the block's memory (no \
            per-packet copy). A fragmented MP4 file is cut between top-level boxes (each packet holds \
            whole boxes, up to 1MiB unless a fragment is larger, up to 8MiB), so a parser downstream never copies a \
            box together; with 'chunk-size' every packet is that many bytes, cut anywhere, as a \
            network would. Packets carry the node id as their stream name \
            unless 'stream' is set. The first packet of every pass of a loop is flagged as a \
            discontinuity, so a parser downstream starts over.
            """,
        options: [
            OptionSpec("path", .string, required: true, "The file to read."),
            OptionSpec("chunk-size", .size, min: "1", max: "64MiB",
                       "Bytes per packet, cut anywhere; when unset, whole top-level boxes of an MP4 file (64KiB for other files)."),
            OptionSpec("loop", .bool, default: "false", "Start over at the end of the file, until stopped."),
            OptionSpec("rate", .rate, above: "0B/s",
                       "Pace the output to this many bytes per second, in packets of 50 ms of it (1KiB to 64KiB; an MP4 file's are whole boxes, a fragment each at most unless its boxes are small) unless chunk-size is set; as fast as possible when unset."),
            OptionSpec("realtime", .bool, default: "false",
                       "Read the file as fragmented MP4 and send each fragment once its media time has passed, as a camera does (a loop's pass lasts the file's media length; a timestamp jump waits 60 s at most; boxes up to 64MiB); chunk-size and rate do not apply."),
            OptionSpec("stream", .string, "Stream name of the packets; the node id when unset."),
        ],
        accepts: [],
        emits: .kinds(.bytes), performsBlockingIO: true,
        make: { options in
            FileReplay(
                path: try options.string("path"), chunkSize: try options.ifSet("chunk-size", options.size),
                loop: try options.bool("loop"), rate: try options.ifSet("rate", options.rate),
                realtime: try options.bool("realtime"), stream: try options.ifSet("stream", options.string) ?? options.nodeID)
        })

    let path: String
    /// nil: cut between boxes (or in 64KiB chunks for a file that is not MP4).
    let chunkSize: Int?
    let loop: Bool
    let rate: Double?
    let realtime: Bool
    let stream: String

    public func run(_ context: NodeContext) async throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        if realtime {
            try await replayInRealTime(fd, context)
            return
        }
        if chunkSize == nil, TopLevelBoxes.startsFile(try readBlock(fd, size: 16, at: 0)) {
            try await replayBoxes(fd, context)
            return
        }
        let chunkSize = self.chunkSize ?? rate.map(Self.pieceBytes(rate:)) ?? 64 << 10
        // Blocks of many chunks: one read(2) per block, packets are slices.
        let blockSize = max(chunkSize, min(chunkSize * 16, 4 << 20))
        var sequence: UInt64 = 0
        var pacer = rate.map { RatePacer(bytesPerSecond: $0) }
        var startOfPass = true
        while !Task.isCancelled {
            var block = try readBlock(fd, size: blockSize)
            if block.readableBytes == 0 {
                // A pass that read nothing (the file is empty, or was emptied) ends the loop.
                guard loop, !startOfPass else { return }
                guard lseek(fd, 0, SEEK_SET) == 0 else { throw FileError(path: path, operation: "seek", errno: errno) }
                startOfPass = true
                continue
            }
            let receivedAt = MonotonicClock.now()
            while let chunk = block.readSlice(length: min(chunkSize, block.readableBytes)) {
                if let wait = pacer?.delay(forSending: chunk.readableBytes, now: context.clock.now) {
                    try await context.clock.sleep(for: wait)
                }
                await context.emit(Packet(kind: .bytes, stream: stream, sequence: sequence, payload: chunk,
                                          receivedAt: receivedAt, discontinuity: startOfPass && sequence > 0))
                startOfPass = false
                sequence += 1
                if block.readableBytes == 0 { break }
            }
        }
    }
}

extension FileReplay {
    /// The next block of the file (at `offset`, or where the last read
    /// ended); empty at its end.
    func readBlock(_ fd: Int32, size: Int, at offset: Int64? = nil) throws -> ByteBuffer {
        var block = ByteBufferAllocator().buffer(capacity: size)
        _ = try block.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
            while true {
                let n = offset.map { pread(fd, raw.baseAddress, size, off_t($0)) } ?? read(fd, raw.baseAddress, size)
                if n >= 0 { return n }
                if errno != EINTR { throw FileError(path: path, operation: "read", errno: errno) }
            }
        }
        return block
    }

    /// A buffer of `pool` filled by `fill`. While downstream holds the pool's
    /// limit, it waits for a consumer to take a packet (which may let a
    /// buffer go: an event, not a timer), and reads outside the pool once
    /// nothing is queued to wait for: a node that keeps slices itself (the
    /// web sink's GOP cache, a stalled viewer) must not stall the reader.
    static func block(_ size: Int, from pool: inout BlockPool, _ context: NodeContext,
                     _ fill: (inout ByteBuffer) throws -> Void) async throws -> ByteBuffer {
        while true {
            if let buffer = try pool.readNow(size, fill) { return buffer }
            guard await context.output.waitForConsumer() else { return try pool.read(size, fill) }
        }
    }

    /// Emits an MP4 file as packets of whole top-level boxes, read in blocks
    /// of 1MiB: each read starts where the last whole box ended, so no box
    /// is cut. A box (or moof + mdat) larger than a block is read whole when
    /// it is at most 8MiB, else sent in blocks for the parser to gather (or
    /// report as too large). Blocks come from a ``BlockPool`` holding at most
    /// 16MiB downstream: memory stays flat and pages once touched are reused.
    func replayBoxes(_ fd: Int32, _ context: NodeContext) async throws {
        let blockSize = 1 << 20
        // 2MiB buffers: a 1MiB block and most fragments that are larger fit one.
        var pool = BlockPool(limitBytes: 16 << 20, bufferBytes: 2 << 20)
        var offset: Int64 = 0
        var sequence: UInt64 = 0
        var startOfPass = true
        var pacer = rate.map { RatePacer(bytesPerSecond: $0) }
        while !Task.isCancelled {
            var block = try await Self.block(blockSize, from: &pool, context) { try fill(&$0, count: blockSize, from: fd, at: offset) }
            if block.readableBytes == 0 {
                // A pass that read nothing (the file is empty, or was emptied) ends the loop.
                guard loop, !startOfPass else { return }
                offset = 0
                startOfPass = true
                continue
            }
            switch TopLevelBoxes.wholePrefix(of: block) {
            case .whole(let length):
                // At the end of the file a torn last box goes as it is.
                if block.readableBytes == blockSize { block.moveWriterIndex(to: block.readerIndex + length) }
            case .firstBoxExceeds(let size) where size <= 8 << 20:
                block = try await Self.block(Int(size), from: &pool, context) { try fill(&$0, count: Int(size), from: fd, at: offset) }
            case .firstBoxExceeds, .notBoxes:
                break
            }
            offset += Int64(block.readableBytes)
            // Paced, a block goes in pieces of whole boxes (a fragment at most, unless boxes are
            // smaller than a piece): a file smaller than a block never leaves in one burst.
            while block.readableBytes > 0 {
                let length = rate.map { Self.wholeUnits(of: block, upTo: Self.pieceBytes(rate: $0)) } ?? block.readableBytes
                let piece = block.readSlice(length: length)!
                if let wait = pacer?.delay(forSending: piece.readableBytes, now: context.clock.now) {
                    try await context.clock.sleep(for: wait)
                }
                await context.emit(Packet(kind: .bytes, stream: stream, sequence: sequence, payload: piece,
                                          discontinuity: startOfPass && sequence > 0))
                startOfPass = false
                sequence += 1
            }
        }
    }

    /// The bytes a paced packet holds at most (whole boxes may make it
    /// larger): 50 ms of the rate, at least a kilobyte, at most 64KiB.
    static func pieceBytes(rate: Double) -> Int {
        Int(min(max(rate / 20, 1024), 65536))
    }

    /// How many leading bytes of `bytes` to send as one piece: the whole
    /// top-level units (a moof with its mdat) that fit `budget`, or the first
    /// unit when it alone is larger; bytes that are not boxes (a torn end),
    /// `budget` of them. Never 0 for bytes that are not empty.
    static func wholeUnits(of bytes: ByteBuffer, upTo budget: Int) -> Int {
        let window = bytes.getSlice(at: bytes.readerIndex, length: min(budget, bytes.readableBytes)) ?? bytes
        switch TopLevelBoxes.wholePrefix(of: window) {
        case .whole(let length):
            return length
        case .firstBoxExceeds(let size):
            return Int(min(size, Int64(bytes.readableBytes)))
        case .notBoxes:
            return window.readableBytes
        }
    }

    /// Reads up to `wanted` bytes at `offset` (pread) into `buffer`.
    func fill(_ buffer: inout ByteBuffer, count wanted: Int, from fd: Int32, at offset: Int64) throws {
        _ = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: wanted) { raw in
            while true {
                let n = pread(fd, raw.baseAddress, wanted, off_t(offset))
                if n >= 0 { return n }
                if errno != EINTR { throw FileError(path: path, operation: "read", errno: errno) }
            }
        }
    }

    /// Sends the init segment, then each fragment once its media time has
    /// passed (see ``RealtimeSchedule``); a loop's next pass starts one
    /// fragment duration after the last fragment of the pass before.
    func replayInRealTime(_ fd: Int32, _ context: NodeContext) async throws {
        var parser = StreamingParser(configuration: .init(maxBoxSize: Self.maxRealtimeBox))
        var sequence: UInt64 = 0
        var schedule = RealtimeSchedule()
        let begin = context.clock.now
        var pass = 0
        var sentInPass = 0
        while !Task.isCancelled {
            let block = try readBlock(fd, size: 1 << 20)
            if block.readableBytes == 0 {
                guard loop, sentInPass > 0 else { return }
                guard lseek(fd, 0, SEEK_SET) == 0 else { throw FileError(path: path, operation: "seek", errno: errno) }
                parser.reset()
                schedule.newPass()
                pass += 1
                sentInPass = 0
                continue
            }
            parser.append(block)
            while let item = try parser.next() {
                let bytes: ByteBuffer
                switch item {
                case .initSegment(let segment):
                    bytes = segment.bytes
                case .fragment(let fragment):
                    bytes = fragment.bytes
                    let lead = parser.initSegment?.tracks.first(where: \.isVideo) ?? parser.initSegment?.tracks.first
                    if let lead, lead.timescale > 0, let first = fragment.samples.first(where: { $0.track == lead.id }) {
                        let scale = Double(lead.timescale)
                        let duration = fragment.samples.reduce(0.0) { $0 + ($1.track == lead.id ? Double($1.duration) : 0) }
                        let due = schedule.fragment(start: Double(first.dts) / scale, duration: duration / scale)
                        try await context.clock.sleep(until: begin + .seconds(due))
                    }
                case .skipped:
                    continue
                }
                await context.emit(Packet(kind: .bytes, stream: stream, sequence: sequence, payload: bytes,
                                          discontinuity: sentInPass == 0 && pass > 0))
                sequence += 1
                sentInPass += 1
            }
        }
    }

    /// The largest box read in real time: a fragment held whole before it goes.
    static let maxRealtimeBox = 64 << 20
}

/// When `file-replay` in real time sends each fragment, in seconds since the
/// replay began: once the fragment's media has passed, as a camera sends what
/// it has captured. A fragment `[start, start + duration)` is due the time
/// from the previous fragment's end to its own end after the previous one
/// went; the first of a pass (nothing before it) after its own duration. So
/// a loop's pass takes exactly the file's media length: the next starts one
/// fragment after the last, never at once. A value, tested without a clock.
struct RealtimeSchedule {
    /// The longest a single fragment waits: a file whose timestamps jump
    /// (a camera's clock reset, a hostile file) pauses, but never for hours.
    static let maxStep = 60.0

    /// When the last fragment was due.
    private(set) var due = 0.0
    /// Media end of the last fragment of this pass.
    private var lastEnd: Double?
    /// The last step that was not zero: the length of a fragment whose duration is unknown.
    private var lastStep = 0.0

    /// The file starts over: its first fragment follows the last after its own duration.
    mutating func newPass() { lastEnd = nil }

    /// When the fragment of lead-track media `[start, start + duration)` is due.
    mutating func fragment(start: Double, duration: Double) -> Double {
        // A time that does not read (NaN, infinite) goes at once and leaves the schedule as it was.
        guard start.isFinite else { return due }
        let length = duration.isFinite && duration > 0 ? duration : 0
        let end = start + length
        var step: Double
        if let lastEnd {
            step = end - lastEnd
        } else {
            step = length > 0 ? length : lastStep
        }
        // Timestamps that step back go at once, a jump forward (to infinity, even) waits the bound.
        step = step.isNaN ? 0 : min(max(step, 0), Self.maxStep)
        lastEnd = end.isFinite ? end : nil
        if step > 0 { lastStep = step }
        due += step
        return due
    }
}

/// An I/O failure on a named file, with the system's reason.
public struct FileError: Error, CustomStringConvertible {
    public let path: String
    public let operation: String
    public let errno: Int32

    public var description: String {
        "cannot \(operation) '\(path)': \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// Paces a byte stream to a rate: says how long to wait before sending.
struct RatePacer {
    let bytesPerSecond: Double
    private var start: ContinuousClock.Instant?
    private var sent: Double = 0

    init(bytesPerSecond: Double) {
        self.bytesPerSecond = bytesPerSecond
    }

    /// The wait before `bytes` may go at `now` (the pipeline's clock), or nil to send now.
    mutating func delay(forSending bytes: Int, now: ContinuousClock.Instant) -> Duration? {
        let start = self.start ?? now
        self.start = start
        // Clamped: a rate of a byte a day times a megabyte block is centuries.
        let due = start + .nanoseconds(Int64(min(sent / bytesPerSecond * 1e9, 9e18)))
        sent += Double(bytes)
        return due > now ? due - now : nil
    }
}

/// Read buffers a reader cycles through: a buffer is reused once every
/// packet and slice made of it has been dropped downstream (its storage is
/// uniquely owned again), so the pages of a long file are touched once, not
/// once per block. The buffers still held downstream hold at most
/// `limitBytes` between them (one buffer always may): beyond that the reader
/// reads into a buffer outside the pool.
struct BlockPool {
    private var buffers: [ByteBuffer] = []
    let limitBytes: Int
    /// The smallest buffer made: reads of different sizes then share buffers.
    let bufferBytes: Int

    init(limitBytes: Int, bufferBytes: Int = 0) {
        self.limitBytes = limitBytes
        self.bufferBytes = bufferBytes
    }

    /// Bytes of the buffers still held downstream.
    var bytesInUse: Int {
        mutating get {
            var total = 0
            for index in buffers.indices where !isFree(index) { total += buffers[index].capacity }
            return total
        }
    }

    /// A buffer with room for `size` bytes, filled by `fill`; a copy of it
    /// (sharing its storage) stays in the pool. While downstream holds the
    /// limit, a buffer outside the pool (file-replay first waits for its
    /// consumer to take a packet, ``FileReplay/block(_:from:_:_:)``).
    mutating func read(_ size: Int, _ fill: (inout ByteBuffer) throws -> Void) throws -> ByteBuffer {
        if let buffer = try readNow(size, fill) { return buffer }
        var buffer = ByteBufferAllocator().buffer(capacity: size)
        try fill(&buffer)
        return buffer
    }

    /// As ``read(_:_:)``, but nil instead of a buffer outside the pool.
    mutating func readNow(_ size: Int, _ fill: (inout ByteBuffer) throws -> Void) throws -> ByteBuffer? {
        for index in buffers.indices where buffers[index].capacity >= size {
            let reused = try buffers[index].modifyIfUniquelyOwned { buffer -> ByteBuffer in
                buffer.clear()
                try fill(&buffer)
                return buffer
            }
            if let reused { return reused }
        }
        // Free buffers too small for this read make way for one that fits.
        for index in buffers.indices.reversed() where buffers[index].capacity < size && isFree(index) {
            buffers.remove(at: index)
        }
        let inUse = bytesInUse
        let capacity = max(size, bufferBytes)
        guard inUse == 0 || inUse + capacity <= limitBytes else { return nil }
        var buffer = ByteBufferAllocator().buffer(capacity: capacity)
        try fill(&buffer)
        buffers.append(buffer)
        return buffer
    }

    private mutating func isFree(_ index: Int) -> Bool {
        buffers[index].modifyIfUniquelyOwned { _ in true } != nil
    }
}
