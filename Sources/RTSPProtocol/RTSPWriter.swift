public import NIOCore
import Foundation

extension RTSPRequest {
    /// The request as sent: request line, CSeq, the headers, Content-Length
    /// when there is a body, the body.
    public func write(into buffer: inout ByteBuffer) {
        buffer.writeString("\(RTSPWire.clean(method.name)) \(RTSPWire.clean(uri).replacingOccurrences(of: " ", with: "%20")) RTSP/1.0\r\n")
        RTSPWire.writeHeaders(cseq: cseq, headers: headers, body: body, into: &buffer)
    }

    public var bytes: ByteBuffer {
        var buffer = ByteBuffer()
        write(into: &buffer)
        return buffer
    }
}

extension RTSPResponse {
    /// The response as sent: status line, CSeq echoed, the headers,
    /// Content-Length when there is a body, the body.
    public func write(into buffer: inout ByteBuffer) {
        buffer.writeString("RTSP/1.0 \(status) \(RTSPWire.clean(reason))\r\n")
        RTSPWire.writeHeaders(cseq: cseq, headers: headers, body: body, into: &buffer)
    }

    public var bytes: ByteBuffer {
        var buffer = ByteBuffer()
        write(into: &buffer)
        return buffer
    }

    /// A response to `request` with its CSeq.
    public init(answering request: RTSPRequest, status: Int, headers: RTSPHeaders = RTSPHeaders(), body: ByteBuffer = ByteBuffer()) {
        self.init(status: status, cseq: request.cseq, headers: headers, body: body)
    }
}

/// The interleaved frame header (RFC 2326 §10.12) in front of an RTP or
/// RTCP packet sent on the RTSP connection.
public enum RTSPInterleaved {
    /// Writes `$`, the channel and the length; nil if the packet is longer than 65535 bytes.
    public static func writeHeader(channel: UInt8, length: Int, into buffer: inout ByteBuffer) -> Bool {
        guard length >= 0, length <= Int(UInt16.max) else { return false }
        buffer.writeInteger(UInt8(ascii: "$"))
        buffer.writeInteger(channel)
        buffer.writeInteger(UInt16(length))
        return true
    }
}

/// The headers camflow writes with a structure of their own.
extension RTSPHeaders {
    /// `Session: id;timeout=N` (RFC 2326 §12.37).
    public mutating func setSession(_ id: String, timeout: Int? = nil) {
        set("Session", timeout.map { "\(id);timeout=\($0)" } ?? id)
    }

    /// `Public: OPTIONS, DESCRIBE, …` (RFC 2326 §12.28).
    public mutating func setPublic(_ methods: [RTSPMethod]) {
        set("Public", methods.map(\.name).joined(separator: ", "))
    }

    /// `Transport:` with one or more alternatives.
    public mutating func setTransport(_ transports: [RTSPTransport]) {
        set("Transport", transports.map(\.description).joined(separator: ","))
    }

    /// `RTP-Info: url=…;seq=…;rtptime=…, …` (RFC 2326 §12.33).
    public mutating func setRTPInfo(_ entries: [RTPInfo]) {
        set("RTP-Info", entries.map(\.description).joined(separator: ","))
    }

    /// One `WWW-Authenticate` per challenge, in order of preference.
    public mutating func setChallenges(_ challenges: [String]) {
        remove("WWW-Authenticate")
        for challenge in challenges { add("WWW-Authenticate", challenge) }
    }

    /// The `Session` header read: id and timeout, nil when absent or malformed.
    public var session: RTSPSessionHeader? {
        self["Session"].flatMap(RTSPSessionHeader.init(parsing:))
    }
}

/// `Session: id[;timeout=seconds]`.
public struct RTSPSessionHeader: Sendable, Equatable {
    public var id: String
    public var timeout: Int?

    public init(id: String, timeout: Int? = nil) {
        self.id = id
        self.timeout = timeout
    }

    /// Nil unless the id is 1 to 256 of RFC 2326's session characters and a
    /// timeout, if any, is 1 to 86400 seconds.
    public init?(parsing value: String) {
        let parts = value.split(separator: ";", omittingEmptySubsequences: false).map { $0.trimmingSpaces }
        guard let id = parts.first, Self.isValid(id: id) else { return nil }
        var timeout: Int?
        for parameter in parts.dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingSpaces }
            if pair.count == 2, pair[0].lowercased() == "timeout" {
                guard let seconds = decimal(pair[1], max: 86400), seconds > 0 else { return nil }
                timeout = seconds
            }
        }
        self.init(id: id, timeout: timeout)
    }

    public static func isValid(id: String) -> Bool {
        (1...256).contains(id.utf8.count)
            && id.utf8.allSatisfy { isAlphanumeric($0) || "$-_.+".utf8.contains($0) }
    }
}

/// One entry of `RTP-Info`: the stream's URL, the first packet's sequence
/// number and RTP time.
public struct RTPInfo: Sendable, Equatable, CustomStringConvertible {
    public var url: String
    public var sequence: UInt16?
    public var rtpTime: UInt32?

    public init(url: String, sequence: UInt16? = nil, rtpTime: UInt32? = nil) {
        self.url = url
        self.sequence = sequence
        self.rtpTime = rtpTime
    }

    public var description: String {
        var text = "url=\(RTSPWire.clean(url).replacingOccurrences(of: ",", with: "%2C").replacingOccurrences(of: ";", with: "%3B"))"
        if let sequence { text += ";seq=\(sequence)" }
        if let rtpTime { text += ";rtptime=\(rtpTime)" }
        return text
    }

    /// Reads an `RTP-Info` value (at most 16 entries); nil if malformed.
    public static func parse(_ value: String) -> [RTPInfo]? {
        // A URL may hold a comma only escaped; entries split on ",url=" would
        // be kinder to broken servers, but every server seen escapes.
        let entries = value.split(separator: ",").map { $0.trimmingSpaces }
        guard entries.count <= 16 else { return nil }
        var result: [RTPInfo] = []
        for entry in entries {
            var info = RTPInfo(url: "")
            for parameter in entry.split(separator: ";") {
                let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingSpaces }
                guard pair.count == 2 else { return nil }
                switch pair[0].lowercased() {
                case "url": info.url = pair[1]
                case "seq": guard let seq = decimal(pair[1], max: Int(UInt16.max)) else { return nil }; info.sequence = UInt16(seq)
                case "rtptime": guard let time = decimal(pair[1], max: Int(UInt32.max)) else { return nil }; info.rtpTime = UInt32(time)
                default: break
                }
            }
            guard !info.url.isEmpty else { return nil }
            result.append(info)
        }
        return result
    }
}

enum RTSPWire {
    /// No CR, LF or other control character reaches the wire from a value:
    /// a header cannot be split in two by what it carries.
    static func clean(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return text }
        return String(String.UnicodeScalarView(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : $0 }))
    }

    static func writeHeaders(cseq: Int, headers: RTSPHeaders, body: ByteBuffer, into buffer: inout ByteBuffer) {
        buffer.writeString("CSeq: \(cseq)\r\n")
        for (name, value) in headers where !RTSPHeaders.same(name, "CSeq") && !RTSPHeaders.same(name, "Content-Length") {
            let safeName = String(decoding: name.utf8.filter(isTokenByte), as: UTF8.self)
            guard !safeName.isEmpty else { continue }
            buffer.writeString("\(safeName): \(clean(value))\r\n")
        }
        if body.readableBytes > 0 { buffer.writeString("Content-Length: \(body.readableBytes)\r\n") }
        buffer.writeString("\r\n")
        var body = body
        buffer.writeBuffer(&body)
    }
}

func isAlphanumeric(_ byte: UInt8) -> Bool {
    (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
        || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs.
    var trimmingSpaces: String {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}
