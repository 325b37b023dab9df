import Yams

/// State of one load: the text for quoting and the errors found so far.
struct LoadContext {
    let file: String
    let source: SourceLines
    let environment: [String: String]
    let includedFrom: [String]
    /// Unset variables become placeholders instead of errors.
    var placeholders = false
    /// The program named in hints.
    var commandName = "camflow"
    var errors: [ConfigError] = []
    /// Errors found beyond ``ConfigErrors/keptLimit``: counted, not kept.
    var moreErrors = 0

    init(file: String, text: String, environment: [String: String], includedFrom: [String], notQuoted: String? = nil) {
        self.file = file
        self.source = SourceLines(text, notQuoted: notQuoted)
        self.environment = environment
        self.includedFrom = includedFrom
    }

    var lines: [Substring] { source.lines }

    /// What was found, as thrown.
    var thrownErrors: ConfigErrors { ConfigErrors(errors, more: moreErrors) }

    func location(line: Int, column: Int) -> SourceLocation {
        SourceLocation(file: file, line: line, column: column, lines: source, includedFrom: includedFrom)
    }

    func location(_ mark: Yams.Mark?) -> SourceLocation? {
        mark.map { location(line: $0.line, column: $0.column) }
    }

    mutating func error(_ message: String, at mark: Yams.Mark?, notes: [String] = []) {
        error(ConfigError(message, at: location(mark) ?? location(line: 1, column: 1), notes: notes))
    }

    mutating func error(_ message: String, at location: SourceLocation?, cause: ConfigError.Cause = .invalid) {
        error(ConfigError(message, at: location, cause: cause))
    }

    private mutating func error(_ error: ConfigError) {
        guard errors.count < ConfigErrors.keptLimit else { return moreErrors += 1 }
        errors.append(error)
    }

    mutating func scalar(_ node: Yams.Node, what: String) -> String? {
        guard case .scalar(let scalar) = node else {
            error("expected a string for \(what)", at: node.mark)
            return nil
        }
        return interpolate(scalar)
    }

    mutating func nodes(_ value: Yams.Node) -> [NodeSpec] {
        guard case .mapping(let mapping) = value else {
            error("'nodes' is a mapping from node id to its settings", at: value.mark)
            return []
        }
        var specs: [NodeSpec] = []
        for (key, body) in mapping {
            guard let id = key.string, !id.isEmpty else {
                error("a node id is a non-empty string", at: key.mark)
                continue
            }
            if let spec = node(id: id, idMark: key.mark, body: body) { specs.append(spec) }
        }
        return specs
    }

    mutating func node(id: String, idMark: Yams.Mark?, body: Yams.Node) -> NodeSpec? {
        guard Self.isValidID(id) else {
            error("node id '\(id)' may hold only letters, digits, '-' and '_'", at: idMark)
            return nil
        }
        guard case .mapping(let fields) = body else {
            error("node '\(id)' needs a mapping with at least 'type'", at: body.mark ?? idMark)
            return nil
        }
        var spec = NodeSpec(id: id, type: "")
        spec.location = location(idMark)
        var sawType = false
        for (key, value) in fields {
            guard let name = key.string else {
                error("option names are strings", at: key.mark)
                continue
            }
            switch name {
            case "type":
                sawType = true
                spec.typeLocation = location(value.mark)
                spec.type = scalar(value, what: "'type' of node '\(id)'") ?? ""
            case "inputs":
                let items: [Yams.Node]
                switch value {
                case .sequence(let sequence): items = Array(sequence)
                case .scalar: items = [value]
                default:
                    error("'inputs' of node '\(id)' is a list of node ids", at: value.mark)
                    items = []
                }
                for item in items {
                    guard let input = scalar(item, what: "an input of node '\(id)'") else { continue }
                    spec.inputs.append(input)
                    spec.inputLocations.append(location(item.mark))
                }
            case "restart":
                spec.restart = restartPolicy(value, node: id) ?? .never
            case "capacity":
                if let text = scalar(value, what: "'capacity'"), let capacity = Int(text), (1...NodeSpec.maxCapacity).contains(capacity) {
                    spec.capacity = capacity
                } else {
                    error("'capacity' of node '\(id)': expected 1 to \(NodeSpec.maxCapacity) packets", at: value.mark)
                }
            default:
                spec.optionKeyLocations[name] = location(key.mark)
                if let option = optionValue(value) { spec.options[name] = option }
            }
        }
        if !sawType {
            error("node '\(id)' has no 'type'", at: idMark, notes: ["note: run '\(commandName) nodes' to list the types"])
            return nil
        }
        return spec
    }

    static func isValidID(_ id: String) -> Bool {
        id.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" }
    }

    mutating func restartPolicy(_ value: Yams.Node, node id: String) -> RestartPolicy? {
        let modes = RestartPolicy.Mode.allCases.map(\.rawValue)
        func mode(_ node: Yams.Node) -> RestartPolicy.Mode? {
            guard let text = scalar(node, what: "'restart'") else { return nil }
            guard let mode = RestartPolicy.Mode(rawValue: text) else {
                error("'restart' of node '\(id)': expected one of 'never', 'on-failure', found '\(text)'"
                        + Suggestions.didYouMean(text, among: modes), at: node.mark)
                return nil
            }
            return mode
        }
        switch value {
        case .scalar:
            return mode(value).map { RestartPolicy(mode: $0) }
        case .mapping(let fields):
            var policy = RestartPolicy(mode: .onFailure)
            for (key, field) in fields {
                let name = key.string ?? ""
                let text = scalar(field, what: "'restart.\(name)'") ?? ""
                switch name {
                case "policy":
                    if let mode = mode(field) { policy.mode = mode }
                case "max-restarts":
                    if text == "unlimited" { policy.maxRestarts = nil }
                    else if let n = Int(text), n >= 0 { policy.maxRestarts = n }
                    else { error("'restart.max-restarts': expected a count or 'unlimited', found '\(text)'", at: field.mark) }
                case "backoff", "max-backoff", "reset-after":
                    guard let duration = Units.duration(text) else {
                        error("'restart.\(name)': expected a duration such as 500ms or 5s, found '\(text)'", at: field.mark)
                        continue
                    }
                    switch name {
                    case "backoff": policy.backoff = duration
                    case "max-backoff": policy.maxBackoff = duration
                    default: policy.resetAfter = duration
                    }
                default:
                    let known = ["policy", "max-restarts", "backoff", "max-backoff", "reset-after"]
                    error("unknown key 'restart.\(name)'; expected one of \(known.joined(separator: ", "))"
                            + Suggestions.didYouMean(name, among: known), at: key.mark)
                }
            }
            return policy
        default:
            error("'restart' is 'never', 'on-failure' or a mapping with 'policy'", at: value.mark)
            return nil
        }
    }

    mutating func optionValue(_ node: Yams.Node) -> OptionValue? {
        switch node {
        case .scalar(let scalar):
            guard let text = interpolate(scalar) else { return nil }
            return OptionValue(.scalar(text), at: location(scalar.mark))
        case .sequence(let sequence):
            return OptionValue(.list(sequence.compactMap { optionValue($0) }), at: location(node.mark))
        case .mapping(let mapping):
            var pairs: [(key: String, value: OptionValue)] = []
            for (key, value) in mapping {
                if let name = key.string, let option = optionValue(value) { pairs.append((name, option)) }
            }
            return OptionValue(.map(pairs), at: location(node.mark))
        case .alias:
            error("YAML aliases are not supported in pipeline files", at: node.mark)
            return nil
        }
    }

    /// Replaces `${VAR}` and `${VAR:-default}`; `$${` is a literal `${`.
    mutating func interpolate(_ scalar: Yams.Node.Scalar) -> String? {
        let quoteOffset = scalar.style == .singleQuoted || scalar.style == .doubleQuoted ? 1 : 0
        do {
            return try Interpolation.expand(scalar.string, environment: environment, placeholders: placeholders)
        } catch {
            let at = scalar.mark.map { location(line: $0.line, column: $0.column + quoteOffset + error.offset) }
            self.error(error.message, at: at, cause: error.cause)
            return nil
        }
    }
}
