public import NIOCore

/// Text that came from a peer (a camera's message, a ZeroMQ topic, a
/// header field), made safe to put in a log line, an event or an error:
/// cut to a length, and every control character escaped, so a peer can
/// neither forge lines (newlines) nor drive the terminal (ANSI escapes).
public enum UntrustedText {
    /// The most characters kept by default.
    public static let defaultLimit = 256

    /// `text`, at most `limit` characters, control characters as `\n`, `\u{1B}`...
    public static func printable(_ text: String, limit: Int = defaultLimit) -> String {
        printable(text, limit: limit, totalBytes: text.utf8.count, truncated: false)
    }

    /// The bytes read as UTF-8 (invalid sequences replaced), then as ``printable(_:limit:)``.
    /// Only the first bytes are decoded, so a huge buffer costs no more than a short one.
    public static func printable(_ bytes: ByteBuffer, limit: Int = defaultLimit) -> String {
        let head = bytes.readableBytesView.prefix(limit * 4)
        return printable(String(decoding: head, as: UTF8.self), limit: limit, totalBytes: bytes.readableBytes,
                         truncated: head.count < bytes.readableBytes)
    }

    private static func printable(_ text: String, limit: Int, totalBytes: Int, truncated: Bool) -> String {
        var out = ""
        var kept = 0
        for scalar in text.unicodeScalars {
            guard kept < limit else { return out + "… (\(totalBytes) bytes)" }
            kept += 1
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.properties.generalCategory == .control || scalar.value == 0x2028 || scalar.value == 0x2029:
                out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return truncated ? out + "… (\(totalBytes) bytes)" : out
    }
}
