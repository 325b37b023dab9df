import Camflow
import Foundation
import Hummingbird
import ISOBMFF
import Logging
import NIOCore
import SafeFiles
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `/api/recordings` (files and gaps from the roots' indexes) and
/// `/api/recordings/{stream}/clip.mp4?start=&duration=` (a range cut from
/// them, streamed a block at a time).
struct RecordingRoutes: Sendable {
    let roots: [String]
    let logger: Logger
    /// Bytes one clip request may hold while it looks for its start (one GOP).
    let maxGOPBytes: Int
    let catalog: RecordingCatalog
    /// Where "now" comes from: the default listing window ends at it.
    let clock: any PipelineClock
    /// Clips cut at once; more are answered 503.
    private let clips = ClipSlots(limit: 4)
    /// The longest clip served.
    static let maxClip = 3600.0
    /// Recordings further apart than this leave a gap.
    static let gapTolerance = 1.5

    init(roots: [String], logger: Logger, maxGOPBytes: Int, maxIndexBytes: Int = RecordingIndex.maxReadBytes,
         clock: any PipelineClock = SystemClock()) {
        self.roots = roots
        self.clock = clock
        self.logger = logger
        self.maxGOPBytes = maxGOPBytes
        catalog = RecordingCatalog(logger: logger, maxBytes: maxIndexBytes)
    }

    /// An index entry and the root it came from.
    struct Recording: Sendable {
        let root: String
        let entry: RecordingIndexEntry
        var isEventClip: Bool { entry.reason != nil }
        var fullPath: String { root + "/" + entry.path }
    }

    func add(to router: Router<BasicRequestContext>) {
        router.get("/api/recordings") { request, _ in
            try await list(request)
        }
        router.get("/api/recordings/:stream/clip.mp4") { request, context in
            try await clip(request, stream: try HLSRoutes.stream(context))
        }
    }

    /// Every root's entries, oldest first; a root without an index yet has
    /// none, one whose index cannot be read is a 500 (never "no recordings").
    func recordings() async throws -> [Recording] {
        var all: [Recording] = []
        for root in roots {
            do {
                all += try await catalog.entries(root: root).map { Recording(root: root, entry: $0) }
            } catch let failure as RecordingIndexError {
                throw HTTPError(.internalServerError, message: "cannot read a recordings index: \(failure.reason)\n")
            }
        }
        return all.sorted { RecordingIndexEntry.listedBefore($0.entry, $1.entry) }
    }

    private func list(_ request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        let now = clock.wallNow
        let from = try query["from"].map { try Self.time(String($0), "from") } ?? now - 86_400
        let to = try query["to"].map { try Self.time(String($0), "to") } ?? now + 60
        let stream = query["stream"].map(String.init)
        let all = try await recordings()
        let streams = Array(Set(all.map(\.entry.stream))).sorted()
        let chosen = all.filter { (stream == nil || $0.entry.stream == stream) && $0.entry.wallEnd >= from && $0.entry.wallStart <= to }
        var files: [String] = []
        for recording in chosen {
            var object = JSONObject()
            object.append("stream", recording.entry.stream)
            object.append("path", recording.entry.path)
            object.append("start", recording.entry.wallStart)
            object.append("end", recording.entry.wallEnd)
            object.append("bytes", Int64(recording.entry.bytes))
            object.append("kind", recording.isEventClip ? "clip" : "recording")
            object.append("reason", recording.entry.reason)
            files.append(object.text)
        }
        var gaps: [String] = []
        for name in streams where stream == nil || name == stream {
            var coveredUntil: Double?
            for recording in chosen where recording.entry.stream == name && !recording.isEventClip {
                if let until = coveredUntil, recording.entry.wallStart - until > Self.gapTolerance {
                    var object = JSONObject()
                    object.append("stream", name)
                    object.append("start", until)
                    object.append("end", recording.entry.wallStart)
                    gaps.append(object.text)
                }
                coveredUntil = max(coveredUntil ?? 0, recording.entry.wallEnd)
            }
        }
        let names = streams.map { name -> String in
            var object = JSONObject()
            object.append("name", name)
            return object.text
        }
        let body = "{\"from\":\(from),\"to\":\(to),\"streams\":[\(names.joined(separator: ","))],"
            + "\"recordings\":[\(files.joined(separator: ","))],\"gaps\":[\(gaps.joined(separator: ","))]}\n"
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.cacheControl] = "no-store"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    private func clip(_ request: Request, stream: String) async throws -> Response {
        let query = request.uri.queryParameters
        guard let startText = query["start"] else { throw HTTPError(.badRequest, message: "clip.mp4 needs start=TIME (ISO 8601 or epoch seconds)\n") }
        let start = try Self.time(String(startText), "start")
        guard let durationText = query["duration"], let duration = Double(durationText), duration > 0, duration <= Self.maxClip else {
            throw HTTPError(.badRequest, message: "clip.mp4 needs duration=SECONDS, above 0 and at most \(Int(Self.maxClip))\n")
        }
        let end = start + duration
        let overlapping = try await recordings().filter { $0.entry.stream == stream && $0.entry.wallEnd > start && $0.entry.wallStart < end }
        // Continuous recording where there is some; event clips only where there is none.
        let continuous = overlapping.filter { !$0.isEventClip }
        let candidates = continuous.isEmpty ? overlapping : continuous
        // Files reached through a link below the root (or no longer regular files) are not served.
        let files = await BlockingIOThread.run(name: "recordings-clip") { [logger] in
            candidates.filter { file in
                do {
                    close(try SafeOpen.regularFile(root: file.root, relative: file.entry.path))
                    return true
                } catch {
                    // The path comes from the index, which others may write: escaped.
                    logger.warning("clip of '\(stream)': \(UntrustedText.printable(String(describing: error), limit: 512)); not served")
                    return false
                }
            }
        }
        guard !files.isEmpty else {
            throw HTTPError(.notFound, message: "no recording of stream '\(stream)' covers \(Self.describe(start)) + \(duration) s\n")
        }
        guard let slot = clips.take() else {
            throw HTTPError(.serviceUnavailable, headers: [.retryAfter: "1"], message: "busy cutting other clips; try again\n")
        }
        var headers = HTTPFields()
        headers[.contentType] = "video/mp4"
        headers[.contentDisposition] = "inline; filename=\"\(Self.fileName(stream, start))\""
        headers[.cacheControl] = "no-store"
        let logger = self.logger
        let maxGOPBytes = self.maxGOPBytes
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            withExtendedLifetime(slot) {}
            var cutter = ClipCutter(start: start, end: end, maxGOPBytes: maxGOPBytes)
            for file in files where !cutter.done {
                cutter.beginFile(wallStart: file.entry.wallStart)
                do {
                    try await Self.read(root: file.root, relative: file.entry.path, logger: logger) { parsed in
                        switch parsed {
                        case .initSegment(let bytes, let segment):
                            _ = cutter.take(initSegment: bytes, parsed: segment)
                        case .fragment(let fragment):
                            for buffer in try cutter.take(fragment: fragment) { try await writer.write(buffer) }
                        }
                        return !cutter.done
                    }
                } catch let failure as ClipCutter.Failure {
                    logger.warning("clip of '\(stream)' from \(UntrustedText.printable(file.fullPath, limit: 512)): \(failure)")
                    break
                } catch let failure as ParseError {
                    // A torn or foreign file ends the clip where it stops making sense; what was written stands.
                    // Its code and offset only: a message quotes the file's bytes (a box type), which stay unlogged.
                    logger.warning("clip of '\(stream)': \(UntrustedText.printable(file.fullPath, limit: 512)) does not parse (\(failure.code.rawValue) at byte \(failure.offset))")
                    break
                }
            }
            for buffer in cutter.finish() { try await writer.write(buffer) }
            try await writer.finish(nil)
        })
    }

    enum Parsed {
        case initSegment(ByteBuffer, InitSegment)
        case fragment(Fragment)
    }

    /// Reads `relative` below `root` a block at a time on a thread of its
    /// own (``BlockingIOThread``, not the cooperative pool), parsing as it
    /// goes; `body` returns false to stop. A file that cannot be opened
    /// safely is logged and read as empty.
    static func read(root: String, relative: String, logger: Logger, _ body: (Parsed) async throws -> Bool) async throws {
        try await BlockingIOThread.run(name: "recordings-clip") {
            try await readBlocking(root: root, relative: relative, logger: logger, body)
        }
    }

    /// ``read(root:relative:logger:_:)`` on the thread it runs on: its reads block.
    private static func readBlocking(root: String, relative: String, logger: Logger,
                                     _ body: (Parsed) async throws -> Bool) async throws {
        // No link followed below the root, never blocking on a FIFO, only a regular file.
        let fd: Int32
        do {
            fd = try SafeOpen.regularFile(root: root, relative: relative)
        } catch {
            logger.warning("recording not read: \(UntrustedText.printable(String(describing: error), limit: 512))")
            return
        }
        defer { close(fd) }
        var parser = StreamingParser()
        while true {
            var block = ByteBufferAllocator().buffer(capacity: 1 << 20)
            var failure: Int32 = 0
            _ = block.writeWithUnsafeMutableBytes(minimumWritableBytes: 1 << 20) { raw in
                var count: Int
                repeat { count = Glibc.read(fd, raw.baseAddress, raw.count) } while count < 0 && errno == EINTR
                if count < 0 { failure = errno }
                return max(count, 0)
            }
            if failure != 0 {
                // The answer has begun (its status is sent): the clip ends where the disk failed, said in the log.
                logger.warning("recording \(UntrustedText.printable(relative, limit: 512)) not read to its end: \(String(cString: strerror(failure)))")
                return
            }
            if block.readableBytes == 0 { return }
            parser.append(block)
            while let item = try parser.next() {
                let more: Bool
                switch item {
                case .initSegment(let segment): more = try await body(.initSegment(segment.bytes, segment))
                case .fragment(let fragment): more = try await body(.fragment(fragment))
                default: more = true
                }
                if !more { return }
            }
        }
    }

    /// ISO 8601 (`2026-12-01T10:00:00Z`, fractions and offsets allowed) or seconds since 1970.
    static func time(_ text: String, _ name: String) throws -> Double {
        if let seconds = Double(text), seconds.isFinite {
            guard seconds.magnitude < 1e11 else {
                throw HTTPError(.badRequest, message: "\(name)=\(UntrustedText.printable(text, limit: 40)) is not a time of this era\n")
            }
            return seconds
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date.timeIntervalSince1970 }
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: text) { return date.timeIntervalSince1970 }
        throw HTTPError(.badRequest, message: "\(name)=\(UntrustedText.printable(text, limit: 40)) is neither ISO 8601 nor epoch seconds\n")
    }

    static func describe(_ time: Double) -> String {
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: Date(timeIntervalSince1970: time))
    }

    /// `cam-20261201T100000Z.mp4`: safe in a header and on any disk.
    static func fileName(_ stream: String, _ start: Double) -> String {
        let safe = String(stream.unicodeScalars.map { $0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" ? Character($0) : "_" }
                            .prefix(40)).filter(\.isASCII)
        let stamp = describe(start).filter { $0.isLetter || $0.isNumber }
        return "\(safe.isEmpty ? "clip" : safe)-\(stamp).mp4"
    }
}

/// A bounded count of clips being cut.
final class ClipSlots: Sendable {
    private let used = Mutex(0)
    let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    /// A slot, or nil when all are taken.
    func take() -> Slot? {
        let taken = used.withLock { used -> Bool in
            guard used < limit else { return false }
            used += 1
            return true
        }
        return taken ? Slot(owner: self) : nil
    }

    /// One clip's slot, given back when the response that holds it is gone
    /// (written, failed, or never started because the client left).
    final class Slot: Sendable {
        let owner: ClipSlots

        init(owner: ClipSlots) {
            self.owner = owner
        }

        deinit { owner.used.withLock { $0 -= 1 } }
    }
}
