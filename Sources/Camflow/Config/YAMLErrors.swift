import Yams

/// Yams's errors, said as pipeline-file errors at the place they point to.
extension LoadContext {
    func syntaxError(_ error: any Error) -> ConfigError {
        switch error {
        case YamlError.scanner(let context, let problem, let mark, _),
             YamlError.parser(let context, let problem, let mark, _),
             YamlError.composer(let context, let problem, let mark, _):
            var notes: [String] = []
            if let context {
                notes.append("note: \(context.text) at line \(context.mark.line), column \(context.mark.column)")
            }
            return ConfigError("YAML syntax: \(problem)", at: location(mark), notes: notes)
        case YamlError.duplicatedKeysInMapping(let duplicates, let context):
            let key = duplicates.first ?? ""
            let first = location(line: context.mark.line, column: context.mark.column)
            let second = secondOccurrence(of: key, after: first) ?? first
            return ConfigError(
                "duplicate key '\(key)': node ids and options may appear once per mapping", at: second,
                notes: second == first ? [] : ["note: '\(key)' is first defined at line \(first.line)"])
        case YamlError.reader(let problem, _, _, _):
            return ConfigError("the file is not readable YAML text: \(problem)", at: location(line: 1, column: 1))
        default:
            return ConfigError("YAML: \(error)", at: location(line: 1, column: 1))
        }
    }

    /// Yams reports a duplicate key at its first place; users fix the second.
    /// Looks for the same key at the same indentation further down.
    private func secondOccurrence(of key: String, after first: SourceLocation) -> SourceLocation? {
        let indent = first.column - 1
        guard indent >= 0, first.line < lines.count else { return nil }
        for index in first.line..<lines.count {
            let line = lines[index]
            let body = line.dropFirst(indent)
            guard line.prefix(indent).allSatisfy({ $0 == " " }), body.hasPrefix(key) else { continue }
            let rest = body.dropFirst(key.count).drop(while: { $0 == " " })
            if rest.hasPrefix(":") { return location(line: index + 1, column: first.column) }
        }
        return nil
    }
}
