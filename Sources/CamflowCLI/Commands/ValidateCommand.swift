import ArgumentParser
import Camflow

/// `camflow validate FILE...`: checks pipelines without opening any file or socket.
struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check pipeline files: syntax, node types, options, inputs, cycles and packet kinds.",
        discussion: "Opens no socket and no file other than the pipeline files. Exit code 2 when any is invalid.")

    @Argument(help: "Pipeline files (YAML).")
    var files: [String]

    func run() throws {
        var invalid = 0
        for file in files {
            do {
                let graph = try PipelineFile.load(file, registry: CommandEnvironment.registry)
                print("\(file): ok (\(graph.nodes.count) nodes)")
            } catch {
                invalid += 1
            }
        }
        if invalid > 0 { throw ExitCodes.invalidPipeline }
    }
}
