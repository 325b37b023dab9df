import ArgumentParser
import Camflow
import Foundation
import Synchronization

/// Reading and checking a pipeline file the same way for every command.
enum PipelineFile {
    /// A pipeline read and checked, with the files it came from.
    struct Loaded: Sendable {
        let graph: PipelineGraph
        /// The pipeline file and every graph file it included.
        let files: [String]
    }

    /// Loads and validates `path`, printing every problem to stderr.
    /// - Throws: `ExitCode` 2 when the file is missing or invalid.
    static func load(_ path: String, registry: NodeRegistry) throws -> PipelineGraph {
        guard let loaded = read(path, registry: registry, environment: ProcessInfo.processInfo.environment) else {
            throw ExitCodes.invalidPipeline
        }
        return loaded.graph
    }

    /// Loads and validates `path` with `environment` for `${VAR}`; prints
    /// every problem to stderr and returns nil when there is one.
    static func read(_ path: String, registry: NodeRegistry, environment: [String: String],
                     allowUnset: Bool = false) -> Loaded? {
        let reader = PipelineFileReader(pipelineFile: path)
        let source: PipelineSource
        do {
            source = try reader.read(path)
        } catch {
            printError(error.description)
            return nil
        }
        let included = Mutex<[String]>([])
        var loader = PipelineLoader(environment: environment, readSource: { file in
            included.withLock { $0.append(file) }
            return try reader.read(file)
        })
        loader.allowsUnsetVariables = allowUnset
        loader.commandName = CommandEnvironment.commandName
        var validator = GraphValidator(registry: registry)
        validator.allowsPlaceholders = allowUnset
        validator.commandName = CommandEnvironment.commandName
        do {
            let spec = try loader.load(source, file: path)
            let graph = try validator.validate(spec)
            return Loaded(graph: graph, files: [path] + included.withLock { $0 })
        } catch {
            printError(allowUnset ? Self.showingPlaceholders(error.description) : error.description)
            let count = error.count
            printError("\(path): \(count) error\(count == 1 ? "" : "s")")
            return nil
        }
    }

    /// Text with each unset variable's placeholder written back as `${NAME}`.
    static func showingPlaceholders(_ text: String) -> String {
        let parts = text.split(separator: "\u{E000}", omittingEmptySubsequences: false)
        return parts.enumerated().map { $0.offset % 2 == 1 ? "${\($0.element)}" : String($0.element) }.joined()
    }
}
