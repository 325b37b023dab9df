/// Hides credentials in text that is printed: URLs with a password, and
/// values of password-like keys in quoted pipeline lines.
public enum Redaction {
    /// Keys whose values are never printed.
    static let secretKeys: Set<String> = ["password", "pass", "pwd", "secret", "token", "curve-secret-key", "api-key"]

    /// `ws://admin:hunter2@cam/ws` → `ws://admin:***@cam/ws`; query
    /// credentials (`?user=admin&pwd=hunter2`) are masked too.
    public static func url(_ text: String) -> String {
        var result = ""
        var rest = Substring(text)
        if let scheme = rest.range(of: "://") {
            let authorityEnd = rest[scheme.upperBound...].firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" })
                ?? rest.endIndex
            if let at = rest[scheme.upperBound..<authorityEnd].lastIndex(of: "@"),
               let colon = rest[scheme.upperBound..<at].firstIndex(of: ":") {
                result += rest[...colon] + "***"
                rest = rest[at...]
            }
        }
        // Query parameters with a secret-sounding name, in any case: ?pwd=, &Password=, &token=...
        guard let query = rest.firstIndex(of: "?") else { return result + rest }
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
            let end = value.firstIndex(where: { $0 == "," || $0 == "}" }) ?? value.endIndex
            let secret = value[..<end]
            result += leading
            if secret.hasPrefix("${") || secret.isEmpty {
                result += secret
            } else {
                result += "***"
            }
            rest = value[end...]
        }
        return result + rest
    }
}
