/// Hides credentials in text that is printed: URLs with a password, and
/// values of password-like keys in quoted pipeline lines.
public enum Redaction {
    /// Keys whose values are never printed.
    static let secretKeys: Set<String> = ["password", "pass", "pwd", "secret", "token", "curve-secret-key", "api-key"]

    /// `ws://admin:hunter2@cam/ws` → `ws://admin:***@cam/ws`; query
    /// credentials (`?user=admin&pwd=hunter2`) are masked too.
    ///
    /// The user-info runs to the *last* `@` of the URL: a password may hold
    /// `/ ? # @ :` (operators paste them unencoded), so the first of those
    /// cannot end it. The URL ends at white space (a URL holds none) or, when
    /// it opens a quoted string, at the closing quote. A URL whose path or
    /// query holds an `@` after a `:` (a port) is masked from that `:` on:
    /// the two cannot be told apart, and hiding too much is the safe side.
    public static func url(_ text: String) -> String {
        var result = ""
        var rest = Substring(text)
        while let scheme = rest.range(of: "://") {
            let quote = rest[..<scheme.lowerBound].reversed().first { !($0.isLetter || $0.isNumber || "+-.".contains($0)) }
            let opensQuote = quote == "\"" || quote == "'"
            var end = scheme.upperBound
            while end < rest.endIndex {
                let character = rest[end]
                if opensQuote ? character == quote : (character.isWhitespace || character == "\"" || character == "'") { break }
                // An escaped quote inside a double-quoted string does not end it.
                if opensQuote, character == "\\", quote == "\"", rest.index(after: end) < rest.endIndex {
                    end = rest.index(after: end)
                }
                end = rest.index(after: end)
            }
            let token = rest[scheme.upperBound..<end]
            if let at = token.lastIndex(of: "@"), let colon = token[..<at].firstIndex(of: ":") {
                result += rest[...colon] + "***"
                result += queryMasked(rest[at..<end])
            } else {
                result += queryMasked(rest[..<end])
            }
            rest = rest[end...]
        }
        return result + rest
    }

    /// Masks the values of secret-named query parameters in one URL's text.
    private static func queryMasked(_ rest: Substring) -> String {
        var result = ""
        // Query parameters with a secret-sounding name, in any case: ?pwd=, &Password=, &token=...
        guard let query = rest.firstIndex(of: "?") else { return String(rest) }
        result += rest[...query]
        let fragment = rest[query...].firstIndex(of: "#") ?? rest.endIndex
        let parameters = rest[rest.index(after: query)..<fragment].split(separator: "&", omittingEmptySubsequences: false)
        result += parameters.map { parameter -> String in
            guard let equals = parameter.firstIndex(of: "=") else { return String(parameter) }
            let key = parameter[..<equals].lowercased()
            let secret = secretKeys.contains(key) || key.hasSuffix("password") || key.hasSuffix("token")
            return secret ? parameter[...equals] + "***" : String(parameter)
        }.joined(separator: "&")
        return result + rest[fragment...]
    }

    /// A pipeline line with secret values masked: `password: x` → `password: ***`.
    /// References such as `${INSTAR_PASSWORD}` stay visible.
    public static func line(_ text: String) -> String {
        var result = ""
        var rest = Substring(url(text))
        while let colon = rest.firstIndex(of: ":") {
            let keyPart = rest[..<colon]
            let key = keyPart.split(whereSeparator: { " {,\t\"'".contains($0) }).last.map(String.init) ?? ""
            result += rest[...colon]
            rest = rest[rest.index(after: colon)...]
            guard secretKeys.contains(key.lowercased()) || key.lowercased().hasSuffix("password") else { continue }
            let leading = rest.prefix(while: { $0 == " " })
            let value = rest.dropFirst(leading.count)
            let end = secretEnd(value, inFlow: result.contains("{") || result.contains("["))
            let secret = value[..<end]
            result += leading
            if secret.isEmpty || isReference(secret) {
                result += secret
            } else {
                result += "***"
            }
            rest = value[end...]
        }
        return result + rest
    }

    /// `${NAME}`, quoted or not: a reference says nothing secret (a
    /// default, `${NAME:-value}`, may be the secret itself).
    private static func isReference(_ value: Substring) -> Bool {
        var bare = value
        if let quote = bare.first, quote == "\"" || quote == "'", bare.count >= 2, bare.last == quote {
            bare = bare.dropFirst().dropLast()
        }
        guard bare.hasPrefix("${"), bare.hasSuffix("}") else { return false }
        return bare.dropFirst(2).dropLast().allSatisfy { $0 == "_" || $0.isLetter || $0.isNumber }
    }

    /// Where a secret value starting `value` ends: at its closing quote when
    /// quoted (a quoted password may hold `,` `}` `#` or `:`); in a flow
    /// mapping at `,` or `}`; otherwise at a comment or the end of the line.
    private static func secretEnd(_ value: Substring, inFlow: Bool) -> Substring.Index {
        if let quote = value.first, quote == "\"" || quote == "'" {
            var index = value.index(after: value.startIndex)
            while index < value.endIndex {
                if value[index] == "\\", quote == "\"" {
                    index = value.index(after: index)
                    if index == value.endIndex { break }
                } else if value[index] == quote {
                    return value.index(after: index)
                }
                index = value.index(after: index)
            }
            return value.endIndex
        }
        if inFlow, let end = value.firstIndex(where: { $0 == "," || $0 == "}" || $0 == "]" }) { return end }
        return value.range(of: " #")?.lowerBound ?? value.endIndex
    }
}
