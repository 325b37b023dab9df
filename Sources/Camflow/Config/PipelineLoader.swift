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
    public var readSource: @Sendable (String) throws -> PipelineSource
    /// An unset variable without a default becomes a placeholder instead of
    /// an error, and the validator leaves what depends on it unchecked: for
    /// checking in CI a file that needs secrets. Never for running.
    public var allowsUnsetVariables = false
    /// The program the hints in errors name: a custom binary's own name.
    public var commandName = "camflow"

    /// - Parameter readFile: reads included graph files (every line may be
    ///   quoted); the file system through a ``PipelineFileReader`` that
    ///   quotes every file when nil.
    public init(environment: [String: String], readFile: (@Sendable (String) throws -> String)? = nil) {
        self.environment = environment
        if let readFile {
            readSource = { PipelineSource(text: try readFile($0)) }
        } else {
            readSource = { path in try PipelineFileReader(folder: nil).read(path) }
        }
    }

    /// - Parameter readSource: reads included graph files, saying which may be quoted.
    public init(environment: [String: String], readSource: @escaping @Sendable (String) throws -> PipelineSource) {
        self.environment = environment
        self.readSource = readSource
    }

    /// Parses `text`, read from `file`; composite nodes (`type: graph`) are
    /// replaced by the nodes of the graph they include.
    public func load(_ text: String, file: String) throws(ConfigErrors) -> PipelineSpec {
        try load(PipelineSource(text: text), file: file)
    }

    /// Parses a file's `source` (``PipelineFileReader``): its lines are quoted in errors only if it allows.
    public func load(_ source: PipelineSource, file: String) throws(ConfigErrors) -> PipelineSpec {
        try load(source, file: file, includedFrom: [], includeChain: [file], budget: IncludeBudget())
    }

    /// Files read for one pipeline, includes of includes counted: graphs
    /// that include several others each could otherwise multiply into
    /// millions of loads.
    final class IncludeBudget {
        static let maxLoads = 256
        var loads = 0
    }

    func load(_ source: PipelineSource, file: String, includedFrom: [String],
              includeChain: [String], budget: IncludeBudget) throws(ConfigErrors) -> PipelineSpec {
        let text = source.text
        var context = LoadContext(file: file, text: text, environment: environment, includedFrom: includedFrom,
                                  notQuoted: source.notQuoted)
        context.placeholders = allowsUnsetVariables
        context.commandName = commandName
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
        guard context.errors.isEmpty else { throw context.thrownErrors }
        var spec = PipelineSpec(name: name, file: file, nodes: nodes)
        spec.input = input
        spec.output = output
        return try expandComposites(spec, includedFrom: includedFrom, includeChain: includeChain, budget: budget)
    }

    /// `pipelines/front-door.yaml` is named `front-door` unless it says otherwise.
    static func defaultName(_ file: String) -> String {
        let base = file.split(separator: "/").last.map(String.init) ?? file
        if let dot = base.lastIndex(of: "."), dot != base.startIndex { return String(base[..<dot]) }
        return base
    }
}
