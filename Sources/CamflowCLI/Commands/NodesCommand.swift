import ArgumentParser
import Camflow

/// `camflow nodes [TYPE]`: the node types this binary knows.
struct NodesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nodes",
        abstract: "List node types, or show one type's options.",
        discussion: "With --markdown, prints the reference that docs/nodes.md holds.")

    @Argument(help: "A node type to describe.")
    var type: String?

    @Flag(help: "Print the full reference as Markdown.")
    var markdown = false

    func run() throws {
        let registry = CommandEnvironment.registry
        if markdown {
            print(NodeReference.markdown(registry), terminator: "")
            return
        }
        guard let name = type else {
            print(NodeReference.list(registry, command: CommandEnvironment.commandName))
            return
        }
        guard let nodeType = registry[name] else {
            var message = "error: unknown node type '\(name)'"
            let close = registry.closestNames(to: name)
            if !close.isEmpty { message += "; did you mean " + close.map { "'\($0)'" }.joined(separator: " or ") + "?" }
            printError(message)
            throw ExitCode(64)
        }
        print(NodeReference.describe(nodeType))
    }
}
