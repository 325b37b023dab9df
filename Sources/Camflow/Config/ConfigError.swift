/// A place in a pipeline file: what errors point at.
public struct SourceLocation: Sendable, Equatable {
    /// The file as the user named it.
    public var file: String
    /// 1-based line.
    public var line: Int
    /// 1-based column, in characters.
    public var column: Int
    /// The text of that line, for quoting.
    public var lineText: String
    /// For a file included as a composite node: where it was included, outermost last.
    public var includedFrom: [String]

    public init(file: String, line: Int, column: Int, lineText: String, includedFrom: [String] = []) {
        self.file = file
        self.line = line
        self.column = column
        self.lineText = lineText
        self.includedFrom = includedFrom
    }

    /// The same line, `offset` characters to the right.
    func shifted(by offset: Int) -> SourceLocation {
        var copy = self
        copy.column += offset
        return copy
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
    /// The problem, in one line.
    public var message: String
    /// Where it is; nil for problems of the file as a whole.
    public var location: SourceLocation?
    /// Further lines: a second place, a hint.
    public var notes: [String]

    public init(_ message: String, at location: SourceLocation?, notes: [String] = []) {
        self.message = message
        self.location = location
        self.notes = notes
    }

    public var description: String {
        guard let location else { return (["error: \(message)"] + notes).joined(separator: "\n") }
        var lines = ["\(location.file):\(location.line):\(location.column): error: \(message)"]
        lines += Self.quote(location)
        lines += location.includedFrom.map { "note: in the graph included at \($0)" }
        lines += notes
        return lines.joined(separator: "\n")
    }

    /// The line with a caret under the column.
    static func quote(_ location: SourceLocation) -> [String] {
        let number = String(location.line)
        let gutter = String(repeating: " ", count: number.count)
        let caretPad = String(location.lineText.prefix(max(0, location.column - 1)).map { $0 == "\t" ? "\t" : " " })
        return [
            " \(number) | \(Redaction.line(location.lineText))",
            " \(gutter) | \(caretPad)^",
        ]
    }
}

/// Several problems found in one pass; `validate` reports them all.
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [ConfigError]
    public init(_ errors: [ConfigError]) { self.errors = errors }
    public var description: String { errors.map(\.description).joined(separator: "\n\n") }
}
