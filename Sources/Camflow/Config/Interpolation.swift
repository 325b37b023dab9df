/// `${VAR}` and `${VAR:-default}` in option values. Done on parsed scalars,
/// not on the raw text, so a value holding YAML punctuation cannot change
/// the document's structure and errors keep their positions.
enum Interpolation {
    struct Failure: Error {
        enum Kind {
            /// `${` without its `}`.
            case unclosed
            /// `${...}` whose body is not `NAME` or `NAME:-default`.
            case notAReference(String)
            /// `${NAME}` unset, without a default.
            case unset(String)
        }

        var kind: Kind
        /// Characters from the start of the scalar to the problem.
        var offset: Int

        var message: String {
            switch kind {
            case .unclosed:
                "unclosed '${' in a value; write '$${' for a literal '${'"
            case .notAReference(let body):
                "'${\(body)}' is not a variable reference; expected ${NAME} or ${NAME:-default}"
            case .unset(let name):
                "environment variable '\(name)' is not set; set it or give a default: ${\(name):-value}"
            }
        }

        /// The error's cause, for ``ConfigError/cause``.
        var cause: ConfigError.Cause {
            if case .unset(let name) = kind { return .unsetVariable(name) }
            return .invalid
        }
    }

    /// Marks where an unset variable stood when placeholders are allowed
    /// (`camflow validate --allow-unset`): a private-use character no YAML
    /// value of a real pipeline holds.
    static let placeholderMark: Character = "\u{E000}"

    /// - Parameter placeholders: an unset variable without a default becomes
    ///   a marked placeholder instead of an error.
    static func expand(_ text: String, environment: [String: String], placeholders: Bool = false) throws(Failure) -> String {
        guard text.contains("$") else { return text }
        var result = ""
        let chars = Array(text)
        var i = 0
        while i < chars.count {
            if chars[i] == "$", i + 2 < chars.count, chars[i + 1] == "$", chars[i + 2] == "{" {
                result += "${"
                i += 3
                continue
            }
            guard chars[i] == "$", i + 1 < chars.count, chars[i + 1] == "{" else {
                result.append(chars[i])
                i += 1
                continue
            }
            guard let close = chars[(i + 2)...].firstIndex(of: "}") else {
                throw Failure(kind: .unclosed, offset: i)
            }
            let body = String(chars[(i + 2)..<close])
            let name: String
            let fallback: String?
            if let range = body.range(of: ":-") {
                name = String(body[..<range.lowerBound])
                fallback = String(body[range.upperBound...])
            } else {
                name = body
                fallback = nil
            }
            guard !name.isEmpty, name.allSatisfy({ $0 == "_" || $0.isLetter || $0.isNumber }) else {
                throw Failure(kind: .notAReference(body), offset: i)
            }
            if let value = environment[name], !(value.isEmpty && fallback != nil) {
                result += value
            } else if let fallback {
                result += fallback
            } else if placeholders {
                result += "\(placeholderMark)\(name)\(placeholderMark)"
            } else {
                throw Failure(kind: .unset(name), offset: i)
            }
            i = close + 1
        }
        return result
    }

    /// The names of the placeholders `text` holds (it quotes a value that
    /// holds them); nil when it holds none.
    static func placeholderNames(in text: String) -> [String]? {
        guard text.contains(placeholderMark) else { return nil }
        return text.split(separator: placeholderMark, omittingEmptySubsequences: false)
            .enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
    }
}
