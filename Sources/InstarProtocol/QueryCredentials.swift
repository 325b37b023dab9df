/// Credentials in the request path, `?user=NAME&pwd=PASSWORD`: what INSTAR
/// firmware takes where a client cannot send an `Authorization` header.
public struct QueryCredentials: Sendable, Equatable {
    public var username: String
    public var password: String

    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    /// Reads `user` and `pwd` from the query of `uri`; nil when either is missing.
    public init?(uri: String) {
        guard let question = uri.firstIndex(of: "?") else { return nil }
        var username: String?
        var password: String?
        for pair in uri[uri.index(after: question)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            switch parts[0] {
            case "user": username = String(parts[1]).percentDecoded
            case "pwd": password = String(parts[1]).percentDecoded
            default: continue
            }
        }
        guard let username, let password else { return nil }
        self.init(username: username, password: password)
    }

    /// `path` with the credentials appended to its query. For the wire only:
    /// never print the result.
    public func appended(to path: String) -> String {
        let separator = path.contains("?") ? "&" : "?"
        return path + "\(separator)user=\(username.percentEncodedForQuery)&pwd=\(password.percentEncodedForQuery)"
    }
}

extension String {
    /// The text with `%XX` escapes decoded; malformed escapes are kept as they are.
    public var percentDecoded: String {
        let input = Array(utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(input.count)
        var index = 0
        while index < input.count {
            if input[index] == UInt8(ascii: "%"), index + 2 < input.count,
               let high = Self.hexValue(input[index + 1]), let low = Self.hexValue(input[index + 2]) {
                bytes.append(high << 4 | low)
                index += 3
            } else {
                bytes.append(input[index])
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The text with everything but unreserved characters escaped as `%XX`.
    public var percentEncodedForQuery: String {
        var out = ""
        for byte in utf8 {
            let char = Character(Unicode.Scalar(byte))
            if char.isASCII && (char.isLetter || char.isNumber || "-._~".contains(char)) {
                out.append(char)
            } else {
                out += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return out
    }

    /// The value of one hexadecimal digit; nil for anything else (no signs).
    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
