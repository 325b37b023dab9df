import Foundation
import Yams

/// Reads a pipeline file into a ``PipelineSpec``: YAML syntax, the document's
/// shape, `${VAR}` interpolation, and the keys every node has. Checks that
/// need the registry (types, options, kinds, cycles) are the
/// ``GraphValidator``'s.
public struct PipelineLoader: Sendable {
    /// Variables for `${VAR}`; the process environment in the CLI.
    public var environment: [String: String]
    /// Reads an included graph file (a composite node's `file`).
    public var readFile: @Sendable (String) throws -> String

    /// - Parameter readFile: reads included graph files; the file system when nil.
    public init(environment: [String: String], readFile: (@Sendable (String) throws -> String)? = nil) {
        self.environment = environment
        self.readFile = readFile ?? { try String(contentsOfFile: $0, encoding: .utf8) }
    }

    /// Parses `text`, read from `file`; composite nodes (`type: graph`) are
    /// replaced by the nodes of the graph they include.
    public func load(_ text: String, file: String) throws(ConfigErrors) -> PipelineSpec {
        try load(text, file: file, includedFrom: [], includeChain: [file], budget: IncludeBudget())
    }

    /// Files read for one pipeline, includes of includes counted: graphs
    /// that include several others each could otherwise multiply into
    /// millions of loads.
    private final class IncludeBudget {
        static let maxLoads = 256
        var loads = 0
    }

    private func load(_ text: String, file: String, includedFrom: [String],
                      includeChain: [String], budget: IncludeBudget) throws(ConfigErrors) -> PipelineSpec {
        var context = LoadContext(file: file, text: text, environment: environment, includedFrom: includedFrom)
        if let refusal = YAMLGuard().check(text) {
            throw ConfigErrors([ConfigError(refusal.message, at: context.location(line: refusal.line, column: refusal.column))])
        }
        let root: Yams.Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw ConfigErrors([context.syntaxError(error)])
        }
        guard let root, case .mapping(let document) = root else {
            let at = root.flatMap { context.location($0.mark) } ?? context.location(line: 1, column: 1)
            throw ConfigErrors([ConfigError(
                "a pipeline file is a mapping with 'name' and 'nodes'", at: at,
                notes: ["note: see pipelines/replay.yaml for an example"])])
        }
        var name = Self.defaultName(file)
        var nodes: [NodeSpec] = []
        var sawNodes = false
        var input: String?
        var output: String?
        let keys = ["name", "nodes", "input", "output"]
        for (key, value) in document {
            let keyText = key.string ?? ""
            switch keyText {
            case "name":
                if let text = context.scalar(value, what: "the pipeline name") { name = text }
            case "nodes":
                sawNodes = true
                nodes = context.nodes(value)
            case "input":
                input = context.scalar(value, what: "the graph's input node")
            case "output":
                output = context.scalar(value, what: "the graph's output node")
            default:
                context.error(
                    "unknown top-level key '\(keyText)'; expected one of \(keys.joined(separator: ", "))"
                        + Suggestions.didYouMean(keyText, among: keys),
                    at: key.mark)
            }
        }
        if !sawNodes {
            context.error("the pipeline has no 'nodes' mapping", at: document.mark)
        }
        guard context.errors.isEmpty else { throw ConfigErrors(context.errors) }
        var spec = PipelineSpec(name: name, file: file, nodes: nodes)
        spec.input = input
        spec.output = output
        return try expandComposites(spec, includedFrom: includedFrom, includeChain: includeChain, budget: budget)
    }

    /// Replaces every `type: graph` node by the nodes of its file, ids prefixed
    /// with the composite's id and a dot; its inputs feed the graph's `input`
    /// node, and its consumers read the graph's `output` node.
    private func expandComposites(_ spec: PipelineSpec, includedFrom: [String],
                                  includeChain: [String], budget: IncludeBudget) throws(ConfigErrors) -> PipelineSpec {
        guard spec.nodes.contains(where: { $0.type == "graph" }) else { return spec }
        var errors: [ConfigError] = []
        var expanded: [NodeSpec] = []
        var outputs: [String: String] = [:]
        let directory = spec.file.map { file -> String in
            guard let slash = file.lastIndex(of: "/") else { return "" }
            return String(file[...slash])
        } ?? ""
        for node in spec.nodes {
            guard node.type == "graph" else {
                expanded.append(node)
                continue
            }
            let known = ["file", "params"]
            for (key, value) in node.options where !known.contains(key) {
                errors.append(ConfigError("unknown option '\(key)' for composite node '\(node.id)'; expected file or params"
                                            + Suggestions.didYouMean(key, among: known),
                                          at: node.optionKeyLocations[key] ?? value.location ?? node.location))
            }
            guard let relative = node.options["file"]?.scalarText else {
                errors.append(ConfigError("composite node '\(node.id)' needs 'file': the graph to include", at: node.location))
                continue
            }
            let path = relative.hasPrefix("/") ? relative : directory + relative
            let site = node.options["file"]?.location ?? node.location
            let siteText = site.map { "\($0.file):\($0.line):\($0.column) (node '\(node.id)')" } ?? "node '\(node.id)'"
            guard !includeChain.contains(path) else {
                errors.append(ConfigError("composite node '\(node.id)' includes '\(path)', which includes itself",
                                          at: site))
                continue
            }
            budget.loads += 1
            guard budget.loads <= IncludeBudget.maxLoads else {
                throw ConfigErrors(errors + [ConfigError(
                    "composite node '\(node.id)': the pipeline includes more than \(IncludeBudget.maxLoads) graphs in all",
                    at: site)])
            }
            var parameters = environment
            if let params = node.options["params"] {
                guard case .map(let pairs) = params.content else {
                    errors.append(ConfigError("'params' of composite node '\(node.id)' is a mapping of names to values",
                                              at: params.location ?? node.location))
                    continue
                }
                for (key, value) in pairs { parameters[key] = value.scalarText ?? "" }
            }
            let text: String
            do {
                text = try readFile(path)
            } catch {
                errors.append(ConfigError("cannot read '\(path)', included by composite node '\(node.id)'", at: site))
                continue
            }
            let loader = PipelineLoader(environment: parameters, readFile: readFile)
            let graph: PipelineSpec
            do {
                graph = try loader.load(text, file: path, includedFrom: [siteText] + includedFrom,
                                        includeChain: includeChain + [path], budget: budget)
            } catch {
                errors += error.errors
                continue
            }
            guard let output = graph.output, graph.nodes.contains(where: { $0.id == output }) else {
                errors.append(ConfigError("'\(path)' must name its 'output' node to be used as a composite node", at: site))
                continue
            }
            if !node.inputs.isEmpty, graph.input.map({ id in graph.nodes.contains { $0.id == id } }) != true {
                errors.append(ConfigError("'\(path)' must name its 'input' node: composite node '\(node.id)' has inputs",
                                          at: site))
                continue
            }
            let prefix = node.id + "."
            for var inner in graph.nodes {
                let innerID = inner.id
                inner.id = prefix + innerID
                inner.inputs = inner.inputs.map { prefix + $0 }
                if innerID == graph.input {
                    inner.inputs += node.inputs
                    inner.inputLocations += node.inputLocations
                }
                inner.groups = [node.id] + inner.groups.map { prefix + $0 }
                expanded.append(inner)
            }
            outputs[node.id] = prefix + output
        }
        guard errors.isEmpty else { throw ConfigErrors(errors) }
        // Consumers of a composite read its output node.
        for index in expanded.indices {
            expanded[index].inputs = expanded[index].inputs.map { outputs[$0] ?? $0 }
        }
        var result = spec
        result.nodes = expanded
        return result
    }

    /// `pipelines/front-door.yaml` is named `front-door` unless it says otherwise.
    static func defaultName(_ file: String) -> String {
        let base = file.split(separator: "/").last.map(String.init) ?? file
        if let dot = base.lastIndex(of: "."), dot != base.startIndex { return String(base[..<dot]) }
        return base
    }
}

/// State of one load: the text for quoting and the errors found so far.
private struct LoadContext {
    let file: String
    let lines: [Substring]
    let environment: [String: String]
    let includedFrom: [String]
    var errors: [ConfigError] = []

    init(file: String, text: String, environment: [String: String], includedFrom: [String]) {
        self.file = file
        self.lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        self.environment = environment
        self.includedFrom = includedFrom
    }

    func location(line: Int, column: Int) -> SourceLocation {
        let text = line >= 1 && line <= lines.count ? String(lines[line - 1]) : ""
        return SourceLocation(file: file, line: line, column: column, lineText: text.trimmingTrailingCR,
                              includedFrom: includedFrom)
    }

    func location(_ mark: Yams.Mark?) -> SourceLocation? {
        mark.map { location(line: $0.line, column: $0.column) }
    }

    mutating func error(_ message: String, at mark: Yams.Mark?, notes: [String] = []) {
        errors.append(ConfigError(message, at: location(mark) ?? location(line: 1, column: 1), notes: notes))
    }

    mutating func error(_ message: String, at location: SourceLocation?) {
        errors.append(ConfigError(message, at: location))
    }

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
        for index in first.line..<lines.count {
            let line = lines[index]
            let body = line.dropFirst(indent)
            guard line.prefix(indent).allSatisfy({ $0 == " " }), body.hasPrefix(key) else { continue }
            let rest = body.dropFirst(key.count).drop(while: { $0 == " " })
            if rest.hasPrefix(":") { return location(line: index + 1, column: first.column) }
        }
        return nil
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
                if let text = scalar(value, what: "'capacity'"), let capacity = Int(text), capacity > 0 {
                    spec.capacity = capacity
                } else {
                    error("'capacity' of node '\(id)': expected a positive number of packets", at: value.mark)
                }
            default:
                spec.optionKeyLocations[name] = location(key.mark)
                if let option = optionValue(value) { spec.options[name] = option }
            }
        }
        if !sawType {
            error("node '\(id)' has no 'type'", at: idMark, notes: ["note: run 'camflow nodes' to list the types"])
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
            return try Interpolation.expand(scalar.string, environment: environment)
        } catch {
            let at = location(scalar.mark)?.shifted(by: quoteOffset + error.offset)
            self.error(error.message, at: at)
            return nil
        }
    }
}

extension String {
    var trimmingTrailingCR: String { hasSuffix("\r") ? String(dropLast()) : self }
}
