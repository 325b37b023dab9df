/// The lines of one pipeline file, shared by every location in it: a
/// location costs a reference, not a copy of its line (a long line with many
/// values would otherwise be copied once per value).
final class SourceLines: Sendable {
    let lines: [Substring]
    /// Why the file's lines are never quoted, or nil.
    let notQuoted: String?

    init(_ text: String, notQuoted: String?) {
        // Every line break libyaml counts: "\r\n" is one Character in Swift,
        // so splitting at "\n" alone would leave a CRLF file one line long.
        lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
        self.notQuoted = notQuoted
    }

    /// 1-based line `number` without its line break; empty outside the file.
    func line(_ number: Int) -> Substring {
        guard number >= 1, number <= lines.count else { return "" }
        let line = lines[number - 1]
        return line.hasSuffix("\r") ? line.dropLast() : line
    }
}

/// A place in a pipeline file: what errors point at.
public struct SourceLocation: Sendable, Equatable {
    /// The file as the user named it.
    public var file: String
    /// 1-based line.
    public var line: Int
    /// 1-based column, in Unicode scalars (as libyaml counts).
    public var column: Int
    /// For a file included as a composite node: where it was included, outermost last.
    public var includedFrom: [String]
    private var source: Source

    private enum Source: Sendable {
        case text(String)
        case shared(SourceLines)
    }

    public init(file: String, line: Int, column: Int, lineText: String, includedFrom: [String] = []) {
        self.file = file
        self.line = line
        self.column = column
        self.source = .text(lineText)
        self.includedFrom = includedFrom
    }

    init(file: String, line: Int, column: Int, lines: SourceLines, includedFrom: [String]) {
        self.file = file
        self.line = line
        self.column = column
        self.source = .shared(lines)
        self.includedFrom = includedFrom
    }

    /// The whole text of that line.
    public var lineText: String { String(lineSubstring) }

    private var lineSubstring: Substring {
        switch source {
        case .text(let text): Substring(text)
        case .shared(let lines): lines.line(line)
        }
    }

    /// Why the line is not quoted (its file is not a pipeline file of the
    /// pipeline's folder), or nil.
    public var notQuoted: String? {
        if case .shared(let lines) = source { return lines.notQuoted }
        return nil
    }

    public static func == (a: SourceLocation, b: SourceLocation) -> Bool {
        a.file == b.file && a.line == b.line && a.column == b.column && a.includedFrom == b.includedFrom
            && a.notQuoted == b.notQuoted && a.lineSubstring == b.lineSubstring
    }

    /// The part of the line shown in an error: at most `width` scalars
    /// around the column, `…` where it was cut, control and direction
    /// characters shown as `�` (one each, so the caret stays aligned).
    /// - Returns: the text, and the caret's offset in it.
    func excerpt(width: Int = ConfigError.quoteWidth) -> (text: String, caret: Int) {
        let scalars = lineSubstring.unicodeScalars
        let target = max(0, column - 1)
        let startOffset = max(0, target - width / 2)
        // Walks only as far as the excerpt's end: a column near the start of a huge line costs little.
        guard let start = scalars.index(scalars.startIndex, offsetBy: startOffset, limitedBy: scalars.endIndex) else {
            let shown = Self.shown(scalars.suffix(width))
            let cutBefore = scalars.count > width
            return ((cutBefore ? "…" : "") + shown, target - max(0, scalars.count - width) + (cutBefore ? 1 : 0))
        }
        let end = scalars.index(start, offsetBy: width, limitedBy: scalars.endIndex) ?? scalars.endIndex
        let cutBefore = startOffset > 0
        let text = (cutBefore ? "…" : "") + Self.shown(scalars[start..<end]) + (end < scalars.endIndex ? "…" : "")
        return (text, target - startOffset + (cutBefore ? 1 : 0))
    }

    private static func shown(_ scalars: Substring.UnicodeScalarView.SubSequence) -> String {
        var out = String.UnicodeScalarView()
        for scalar in scalars {
            let value = scalar.value
            let hidden = (value < 0x20 && scalar != "\t") || (0x7F...0x9F).contains(value)
                || (0x202A...0x202E).contains(value) || (0x2066...0x2069).contains(value) || value == 0x2028 || value == 0x2029
            out.append(hidden ? "\u{FFFD}" : scalar)
        }
        return String(out)
    }
}

/// A problem in a pipeline file, with where it is and what was expected.
///
/// Rendered like a compiler diagnostic:
/// ```
/// front-door.yaml:4:19: error: unknown node type 'qeue' (node 'buffer'); did you mean 'queue'?
///     4 |   buffer: { type: qeue }
///       |                   ^
/// ```
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The most characters of a line quoted: a long line is cut around the column.
    public static let quoteWidth = 200
    /// The most characters of a message or note printed (they may hold values from the file).
    /// (A note may list every option of a type with dozens.)
    public static let messageLimit = 2_000

    /// The problem, in one line.
    public var message: String
    /// Where it is; nil for problems of the file as a whole.
    public var location: SourceLocation?
    /// Further lines: a second place, a hint.
    public var notes: [String]
    /// What kind of problem it is, for callers that act on it (`validate
    /// --allow-unset` leaves ``Cause/placeholder(_:)`` errors unchecked).
    public var cause: Cause

    /// What kind of problem a ``ConfigError`` is.
    public enum Cause: Sendable, Equatable {
        /// The file says something that is wrong.
        case invalid
        /// `${NAME}` names an environment variable that is not set and gives no default.
        case unsetVariable(String)
        /// A value that stands in for unset variables (`--allow-unset`) was
        /// read as if it were the value: the problem may not be real.
        case placeholder([String])
    }

    /// - Parameter cause: when nil, ``Cause/placeholder(_:)`` if the message
    ///   quotes a value holding a placeholder (the factories' errors quote
    ///   the values they refuse), else ``Cause/invalid``.
    public init(_ message: String, at location: SourceLocation?, notes: [String] = [], cause: Cause? = nil) {
        self.message = message
        self.location = location
        self.notes = notes
        self.cause = cause ?? Interpolation.placeholderNames(in: message).map(Cause.placeholder) ?? .invalid
    }

    public var description: String {
        // Of a file that is not quoted, messages keep their words, not the values they cite.
        let hide = location?.notQuoted != nil
        let message = Self.printable(hide ? Self.citationsHidden(self.message) : self.message)
        let notes = self.notes.map { Self.printable(hide ? Self.citationsHidden($0) : $0) }
        guard let location else { return (["error: \(message)"] + notes).joined(separator: "\n") }
        var lines = ["\(location.file):\(location.line):\(location.column): error: \(message)"]
        lines += Self.quote(location)
        lines += location.includedFrom.map { "note: in the graph included at \($0)" }
        lines += notes
        return lines.joined(separator: "\n")
    }

    /// A message or note: secrets masked, control characters escaped (a value
    /// holding a newline cannot forge a line), cut to ``messageLimit``.
    static func printable(_ text: String) -> String {
        UntrustedText.printable(Redaction.url(text), limit: messageLimit)
    }

    /// `unknown key 'x'` → `unknown key '…'`: what a message cites from the file.
    static func citationsHidden(_ text: String) -> String {
        var result = ""
        var inside = false
        for character in text {
            if character == "'" {
                result.append(character)
                if !inside { result += "…" }
                inside.toggle()
            } else if !inside {
                result.append(character)
            }
        }
        return result
    }

    /// The line with a caret under the column; nothing of a file that is not quoted.
    static func quote(_ location: SourceLocation) -> [String] {
        let number = String(location.line)
        let gutter = String(repeating: " ", count: number.count)
        if let reason = location.notQuoted { return [" \(gutter) | (line not quoted: \(reason))"] }
        let (text, caret) = location.excerpt()
        let caretPad = String(text.unicodeScalars.prefix(max(0, caret)).map { $0 == "\t" ? "\t" : " " })
        return [
            " \(number) | \(Redaction.line(text))",
            " \(gutter) | \(caretPad)^",
        ]
    }
}

/// Several problems found in one pass; `validate` reports them all, up to
/// ``shownLimit``.
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    /// The most errors printed; the rest are counted.
    public static let shownLimit = 20
    /// The most errors kept; a file with more is counted, not stored.
    static let keptLimit = 100

    public var errors: [ConfigError]
    /// Errors found beyond those in ``errors``.
    public var more: Int

    public init(_ errors: [ConfigError], more: Int = 0) {
        self.errors = Array(errors.prefix(Self.keptLimit))
        self.more = more + max(0, errors.count - Self.keptLimit)
    }

    /// Every error found, kept or counted.
    public var count: Int { errors.count + more }

    public var description: String {
        let shown = errors.prefix(Self.shownLimit).map(\.description)
        let rest = count - shown.count
        let tail = rest > 0 ? ["… and \(rest) more error\(rest == 1 ? "" : "s")"] : []
        return (shown + tail).joined(separator: "\n\n")
    }
}
