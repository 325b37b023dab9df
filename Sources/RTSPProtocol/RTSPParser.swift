public import NIOCore

/// The bounds the parser holds a peer to; the defaults are the issue's.
public struct RTSPParserLimits: Sendable, Equatable {
    /// Request line or status line, terminator excluded.
    public var startLineBytes = 4096
    /// Every header line of one message together, terminators included.
    public var headerBytes = 16384
    public var headerCount = 64
    public var bodyBytes = 65536

    public init(startLineBytes: Int = 4096, headerBytes: Int = 16384, headerCount: Int = 64, bodyBytes: Int = 65536) {
        self.startLineBytes = startLineBytes
        self.headerBytes = headerBytes
        self.headerCount = headerCount
        self.bodyBytes = bodyBytes
    }
}

/// Why a stream is not RTSP camflow reads. The connection cannot go on
/// after one (the parser stays failed); `status` is the answer a server
/// sends before it closes.
public enum RTSPParseError: Error, Sendable, Equatable, CustomStringConvertible {
    case startLineTooLong(limit: Int)
    case malformedStartLine(String)
    case unsupportedVersion(String)
    case headersTooLong(limit: Int)
    case tooManyHeaders(limit: Int)
    case malformedHeader(line: Int, reason: String)
    case foldedHeader(line: Int)
    case missingCSeq
    case invalidCSeq(String)
    case invalidContentLength(String)
    case conflictingContentLength
    case bodyTooLarge(limit: Int)

    public var description: String {
        switch self {
        case .startLineTooLong(let limit): "RTSP start line longer than \(limit) bytes"
        case .malformedStartLine(let line): "malformed RTSP start line \"\(line)\""
        case .unsupportedVersion(let version): "unsupported RTSP version \"\(version)\" (only RTSP/1.0)"
        case .headersTooLong(let limit): "RTSP headers longer than \(limit) bytes in all"
        case .tooManyHeaders(let limit): "more than \(limit) RTSP headers"
        case .malformedHeader(let line, let reason): "malformed RTSP header on line \(line): \(reason)"
        case .foldedHeader(let line): "folded RTSP header on line \(line) (continuation lines are refused)"
        case .missingCSeq: "RTSP message without CSeq"
        case .invalidCSeq(let value): "invalid CSeq \"\(value)\""
        case .invalidContentLength(let value): "invalid Content-Length \"\(value)\""
        case .conflictingContentLength: "several different Content-Length headers"
        case .bodyTooLarge(let limit): "RTSP body larger than \(limit) bytes"
        }
    }

    /// The status a server answers this error with.
    public var status: Int {
        switch self {
        case .startLineTooLong: 414
        case .unsupportedVersion: 505
        case .bodyTooLarge: 413
        default: 400
        }
    }
}

/// An incremental RTSP/1.0 reader (RFC 2326) for either end of a
/// connection: feed it chunks as they arrive, cut anywhere, and take frames
/// out with `next()`. Requests, responses and interleaved binary packets
/// (RFC 2326 §10.12) are told apart by their first byte. Every line is
/// read once, so a trickle of single bytes costs what one chunk does.
public struct RTSPParser: Sendable {
    public let limits: RTSPParserLimits

    private var buffer = ByteBuffer()
    private var state = State.start
    /// Bytes of the unterminated line at the reader index already looked at.
    private var scanned = 0
    private var failure: RTSPParseError?

    private enum Head: Sendable {
        case request(method: String, uri: String)
        case response(status: Int, reason: String)
    }

    private enum State: Sendable {
        case start
        case headers(Head, [(String, String)], bytes: Int)
        case body(Head, [(String, String)], cseq: Int, length: Int)
    }

    public init(limits: RTSPParserLimits = RTSPParserLimits()) {
        self.limits = limits
    }

    /// Bytes received but not yet returned as a frame.
    public var bufferedBytes: Int { buffer.readableBytes }

    /// Whether a message is partly read (a connection closing now lost it).
    public var isMidMessage: Bool {
        if case .start = state { return buffer.readableBytes > 0 }
        return true
    }

    public mutating func append(_ chunk: ByteBuffer) {
        // Taking the chunk itself when nothing is pending keeps interleaved
        // payloads slices of what the connection read.
        if buffer.readableBytes == 0 {
            buffer = chunk
        } else {
            // A stream whose chunks always end mid-frame never empties the
            // buffer: drop what was returned before it grows with the stream.
            if buffer.readerIndex >= Self.discardThreshold { buffer.discardReadBytes() }
            buffer.writeImmutableBuffer(chunk)
        }
    }

    static let discardThreshold = 65536

    /// Bytes the parser's buffer holds, returned ones included (for a bound's test and metrics).
    public var bufferCapacity: Int { buffer.capacity }

    /// The next complete frame, nil until more bytes are needed; throws
    /// (and keeps throwing) once the stream breaks a rule.
    public mutating func next() throws(RTSPParseError) -> RTSPFrame? {
        if let failure { throw failure }
        do {
            return try step()
        } catch {
            failure = error
            throw error
        }
    }

    private mutating func step() throws(RTSPParseError) -> RTSPFrame? {
        while true {
            switch state {
            case .start:
                guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
                if first == UInt8(ascii: "$") {
                    guard let length = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt16.self) else { return nil }
                    guard buffer.readableBytes >= 4 + Int(length) else { return nil }
                    let channel = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self)!
                    buffer.moveReaderIndex(forwardBy: 4)
                    let payload = buffer.readSlice(length: Int(length))!
                    return .interleaved(channel: channel, payload: payload)
                }
                guard let line = try readLine(limit: limits.startLineBytes, tooLong: .startLineTooLong(limit: limits.startLineBytes)) else {
                    return nil
                }
                // Empty lines between messages are tolerated (RFC 2326 §4 via HTTP/1.1 §4.1).
                if line.isEmpty { continue }
                state = .headers(try Self.head(line), [], bytes: 0)
            case .headers(let head, var fields, let bytes):
                let remaining = limits.headerBytes - bytes
                guard let line = try readLine(limit: remaining, tooLong: .headersTooLong(limit: limits.headerBytes)) else {
                    return nil
                }
                let used = bytes + line.count + 2
                if line.isEmpty {
                    let (cseq, length) = try Self.framing(fields, bodyLimit: limits.bodyBytes)
                    state = .body(head, fields, cseq: cseq, length: length)
                    continue
                }
                guard used <= limits.headerBytes else { throw .headersTooLong(limit: limits.headerBytes) }
                guard fields.count < limits.headerCount else { throw .tooManyHeaders(limit: limits.headerCount) }
                fields.append(try Self.header(line, number: fields.count + 1))
                state = .headers(head, fields, bytes: used)
            case .body(let head, let fields, let cseq, let length):
                guard buffer.readableBytes >= length else { return nil }
                let body = buffer.readSlice(length: length)!
                state = .start
                var headers = RTSPHeaders()
                for (name, value) in fields where !RTSPHeaders.same(name, "CSeq") && !RTSPHeaders.same(name, "Content-Length") {
                    headers.add(name, value)
                }
                switch head {
                case .request(let method, let uri):
                    return .request(RTSPRequest(method: RTSPMethod(method), uri: uri, cseq: cseq, headers: headers, body: body))
                case .response(let status, let reason):
                    return .response(RTSPResponse(status: status, reason: reason, cseq: cseq, headers: headers, body: body))
                }
            }
        }
    }

    /// The next line without its terminator (CRLF, or a bare LF), consumed;
    /// nil if its end has not arrived.
    private mutating func readLine(limit: Int, tooLong: RTSPParseError) throws(RTSPParseError) -> [UInt8]? {
        let view = buffer.readableBytesView
        let start = view.startIndex + scanned
        guard let newline = view[start...].firstIndex(of: UInt8(ascii: "\n")) else {
            scanned = view.count
            // A CR may be the first half of the terminator: allow one byte more.
            if view.count > limit + 1 { throw tooLong }
            return nil
        }
        var end = newline
        if end > view.startIndex, view[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        let line = Array(view[view.startIndex..<end])
        guard line.count <= limit else { throw tooLong }
        buffer.moveReaderIndex(to: newline + 1)
        scanned = 0
        return line
    }

    private static func head(_ line: [UInt8]) throws(RTSPParseError) -> Head {
        let parts = line.split(separator: UInt8(ascii: " "), maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw .malformedStartLine(excerpt(bytes: line))
        }
        if parts[0].starts(with: "RTSP/".utf8) {
            let version = String(decoding: parts[0], as: UTF8.self)
            guard version == "RTSP/1.0" else { throw .unsupportedVersion(excerpt(version)) }
            guard parts[1].count == 3, parts[1].allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                  let status = Int(String(decoding: parts[1], as: UTF8.self)), status >= 100
            else { throw .malformedStartLine(excerpt(bytes: line)) }
            guard parts[2].allSatisfy({ $0 >= 0x20 && $0 != 0x7F || $0 == 0x09 }) else {
                throw .malformedStartLine(excerpt(bytes: line))
            }
            return .response(status: status, reason: String(decoding: parts[2], as: UTF8.self))
        }
        let version = String(decoding: parts[2], as: UTF8.self)
        guard parts[0].allSatisfy(isTokenByte), parts[1].allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw .malformedStartLine(excerpt(bytes: line))
        }
        guard version.hasPrefix("RTSP/") else { throw .malformedStartLine(excerpt(bytes: line)) }
        guard version == "RTSP/1.0" else { throw .unsupportedVersion(excerpt(version)) }
        return .request(method: String(decoding: parts[0], as: UTF8.self), uri: String(decoding: parts[1], as: UTF8.self))
    }

    private static func header(_ line: [UInt8], number: Int) throws(RTSPParseError) -> (String, String) {
        if line.first == UInt8(ascii: " ") || line.first == UInt8(ascii: "\t") { throw .foldedHeader(line: number) }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
            throw .malformedHeader(line: number, reason: "no colon")
        }
        let name = line[..<colon]
        guard !name.isEmpty, name.allSatisfy(isTokenByte) else {
            throw .malformedHeader(line: number, reason: "invalid name \"\(excerpt(bytes: name, limit: 32))\"")
        }
        var value = line[(colon + 1)...]
        while let first = value.first, first == 0x20 || first == 0x09 { value = value.dropFirst() }
        while let last = value.last, last == 0x20 || last == 0x09 { value = value.dropLast() }
        // Values are not echoed: an Authorization header carries credentials.
        guard value.allSatisfy({ $0 >= 0x20 && $0 != 0x7F || $0 == 0x09 }) else {
            throw .malformedHeader(line: number, reason: "control character in the value of \(excerpt(bytes: name, limit: 32))")
        }
        return (String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self))
    }

    private static func framing(_ fields: [(String, String)], bodyLimit: Int) throws(RTSPParseError) -> (cseq: Int, length: Int) {
        var cseq: Int?
        var length: Int?
        for (name, value) in fields {
            if RTSPHeaders.same(name, "CSeq") {
                guard let parsed = decimal(value, max: Int(UInt32.max)), cseq == nil || cseq == parsed else {
                    throw .invalidCSeq(excerpt(value))
                }
                cseq = parsed
            } else if RTSPHeaders.same(name, "Content-Length") {
                guard !value.isEmpty, value.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                    throw .invalidContentLength(excerpt(value))
                }
                guard let parsed = decimal(value, max: bodyLimit) else { throw .bodyTooLarge(limit: bodyLimit) }
                if let length, length != parsed { throw .conflictingContentLength }
                length = parsed
            }
        }
        guard let cseq else { throw .missingCSeq }
        return (cseq, length ?? 0)
    }
}

/// A non-negative decimal of digits only, nil past `max` (no overflow on any length).
func decimal(_ text: some StringProtocol, max: Int) -> Int? {
    guard !text.isEmpty else { return nil }
    var value = 0
    for byte in text.utf8 {
        guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
        let (times, o1) = value.multipliedReportingOverflow(by: 10)
        let (sum, o2) = times.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
        guard !o1, !o2, sum <= max else { return nil }
        value = sum
    }
    return value
}

/// RFC 2616 §2.2's token characters.
func isTokenByte(_ byte: UInt8) -> Bool {
    guard byte > 0x20, byte < 0x7F else { return false }
    return !"()<>@,;:\\\"/[]?={}".utf8.contains(byte)
}
