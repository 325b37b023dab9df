import Foundation
import Hummingbird
import NIOCore

/// `/hls/{stream}/index.m3u8` and its init segments, segments and parts,
/// with LL-HLS blocking playlist reloads and preload hints.
struct HLSRoutes: Sendable {
    let store: HLSStore

    func add(to router: Router<BasicRequestContext>) {
        router.get("/hls/:stream/index.m3u8") { request, context in
            try await playlist(stream: try Self.stream(context), request: request)
        }
        router.get("/hls/:stream/:file") { _, context in
            try await media(stream: try Self.stream(context), file: context.parameters.get("file") ?? "")
        }
    }

    private func playlist(stream: String, request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        if query["_HLS_part"] != nil, query["_HLS_msn"] == nil {
            return Self.text("_HLS_part needs _HLS_msn\n", .badRequest)
        }
        if let msnText = query["_HLS_msn"] {
            guard let msn = Self.decimal(msnText) else {
                return Self.text("_HLS_msn must be a segment number (decimal digits, at most \(Self.maxDigits))\n", .badRequest)
            }
            var part: Int?
            if let partText = query["_HLS_part"] {
                guard let value = Self.decimal(partText) else {
                    return Self.text("_HLS_part must be a part number (decimal digits, at most \(Self.maxDigits))\n", .badRequest)
                }
                part = value
            }
            // The protocol's limit: a client may ask at most two segments ahead.
            let (newest, target) = store.read(stream) { ($0.lastPart?.msn ?? -1, $0.targetDuration) } ?? (-1, 1)
            if msn > newest + 2 {
                return Self.text("_HLS_msn=\(msn) is more than two segments past the newest (\(newest))\n", .badRequest)
            }
            let partNumber = part
            let store = self.store
            let ready = await ConnectionPeer.unlessHungUp(false) {
                await store.wait(for: stream, timeout: .seconds(3 * target)) { $0.has(msn: msn, part: partNumber) }
            }
            if !ready { return Self.text("segment \(msn) did not arrive in time\n", .serviceUnavailable) }
        }
        guard let text = store.read(stream, { $0.playlist() }) else {
            return Self.text("no HLS for stream '\(stream)' yet: it has not sent a whole segment (keyframe to keyframe)\n", .notFound)
        }
        var headers = HTTPFields()
        headers[.contentType] = "application/vnd.apple.mpegurl"
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    private func media(stream: String, file: String) async throws -> Response {
        guard let name = HLSMediaName(file) else { return Self.text("no such HLS file: \(file)\n", .notFound) }
        if let bytes = store.read(stream, { name.bytes(in: $0) }) { return Self.media(bytes) }
        // A part the playlist hints at is held until it exists (preload hint).
        guard case .part(let msn, let index) = name,
              let (target, hinted) = store.read(stream, { timeline in
                  (timeline.targetDuration, timeline.lastPart.map { last in
                      (msn == last.msn && index == last.parts) || (msn == last.msn + 1 && index == 0) } ?? false)
              }), hinted
        else { return Self.text("no such HLS file: \(file)\n", .notFound) }
        let store = self.store
        _ = await ConnectionPeer.unlessHungUp(false) {
            await store.wait(for: stream, timeout: .seconds(3 * target)) { $0.has(msn: msn, part: index) }
        }
        guard let bytes = store.read(stream, { name.bytes(in: $0) }) else {
            return Self.text("part \(msn).\(index) did not arrive\n", .notFound)
        }
        return Self.media(bytes)
    }

    /// The most digits a number in a query or file name may have.
    static let maxDigits = 12

    /// A number written as plain decimal digits: no sign, space or other numeral, and not so long that it overflows.
    static func decimal<Text: StringProtocol>(_ text: Text) -> Int? {
        guard !text.isEmpty, text.utf8.count <= maxDigits, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        return Int(text)
    }

    static func stream(_ context: BasicRequestContext) throws -> String {
        guard let raw = context.parameters.get("stream"), let name = raw.removingPercentEncoding else {
            throw HTTPError(.badRequest, message: "bad stream name")
        }
        return name
    }

    private static func media(_ buffers: [ByteBuffer]) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "video/mp4"
        headers[.contentLength] = String(buffers.reduce(0) { $0 + $1.readableBytes })
        headers[.cacheControl] = "private, max-age=60"
        return Response(status: .ok, headers: headers, body: .init(contentsOf: buffers))
    }

    private static func text(_ text: String, _ status: HTTPResponse.Status) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

/// The files a playlist names: `init-V.mp4`, `segment-N.m4s`, `part-N.I.m4s`.
enum HLSMediaName: Equatable {
    case initSegment(version: Int)
    case segment(msn: Int)
    case part(msn: Int, index: Int)

    init?(_ file: String) {
        func number(_ text: Substring) -> Int? { HLSRoutes.decimal(text) }
        if file.hasPrefix("init-"), file.hasSuffix(".mp4"), let version = number(file.dropFirst(5).dropLast(4)) {
            self = .initSegment(version: version)
        } else if file.hasPrefix("segment-"), file.hasSuffix(".m4s"), let msn = number(file.dropFirst(8).dropLast(4)) {
            self = .segment(msn: msn)
        } else if file.hasPrefix("part-"), file.hasSuffix(".m4s") {
            let numbers = file.dropFirst(5).dropLast(4).split(separator: ".", omittingEmptySubsequences: false)
            guard numbers.count == 2, let msn = number(numbers[0]), let index = number(numbers[1]) else { return nil }
            self = .part(msn: msn, index: index)
        } else {
            return nil
        }
    }

    /// The file's bytes (shared with the timeline, not copied); a segment is its parts in turn.
    func bytes(in timeline: HLSTimeline) -> [ByteBuffer]? {
        switch self {
        case .initSegment(let version): timeline.inits[version].map { [$0] }
        case .segment(let msn): timeline.segment(msn).flatMap { $0.complete ? $0.parts.map(\.bytes) : nil }
        case .part(let msn, let index): timeline.segment(msn).flatMap { index < $0.parts.count ? [$0.parts[index].bytes] : nil }
        }
    }
}
