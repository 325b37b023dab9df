import ArgumentParser
import Camflow
import Foundation

/// `camflow validate FILE...`: checks pipelines without opening any file or socket.
struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check pipeline files: syntax, node types, options, inputs, cycles and packet kinds.",
        discussion: """
            Opens no socket and no file other than the pipeline files. Exit code 2 when any is \
            invalid. With --allow-unset, a ${VAR} that is not set (and has no default) is not an \
            error: the option it stands in and what its node checks after it are left unchecked and \
            listed, everything else is checked, so CI can check files that need secrets.
            """)

    @Argument(help: "Pipeline files (YAML).")
    var files: [String]

    @Flag(help: "Treat unset ${VAR}s as placeholders: check everything that does not depend on them.")
    var allowUnset = false

    func run() throws {
        var invalid = 0
        for file in files {
            do {
                guard let loaded = PipelineFile.read(file, registry: CommandEnvironment.registry,
                                                     environment: ProcessInfo.processInfo.environment, allowUnset: allowUnset) else {
                    throw ExitCodes.invalidPipeline
                }
                let graph = loaded.graph
                print("\(file): ok (\(graph.nodes.count) nodes)" + (graph.unchecked.isEmpty ? "" : "; not checked, as variables are unset:"))
                for line in graph.unchecked { print("  \(line)") }
            } catch {
                invalid += 1
            }
        }
        if invalid > 0 { throw ExitCodes.invalidPipeline }
    }
}
