public import ArgumentParser
public import Camflow
import FilesPlugin
#if canImport(Glibc)
import Glibc
#endif
import InstarPlugin
import ExecPlugin
import MP4Plugin
import RateLimitPlugin
import WebPlugin
import ZeroMQPlugin

/// The plugins compiled into the `camflow` executable.
public enum BuiltinPlugins {
    public static let all: [any CamflowPlugin.Type] = [FilesPlugin.self, MP4Plugin.self, InstarPlugin.self, ZeroMQPlugin.self,
                                                       RateLimitPlugin.self, ExecPlugin.self, WebPlugin.self]
}

/// The `camflow` command line. A custom binary with extra node types calls
/// ``main(plugins:)`` with a longer list.
public struct CamflowCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "camflow",
        abstract: "Runs declarative pipelines over live camera streams.",
        discussion: """
            Exit codes: 0 success (also after Ctrl-C or SIGTERM once the pipeline drained), \
            1 a node failed or the run could not start, 2 the pipeline file is missing or invalid, \
            64 wrong command-line usage.
            """,
        subcommands: [RunCommand.self, ValidateCommand.self, GraphCommand.self, NodesCommand.self,
                      SimCommand.self, BrokerCommand.self, KeygenCommand.self, RecordingsCommand.self, BenchCommand.self])

    public init() {}

    /// Parses the command line and runs it with the node types of `plugins`
    /// (the engine's own nodes are always there).
    public static func main(plugins: [any CamflowPlugin.Type]) async {
        // A file size limit (ulimit -f) must fail a write with EFBIG, which
        // file-record reports and retries, not kill the process.
        signal(SIGXFSZ, SIG_IGN)
        await CommandEnvironment.$registry.withValue(NodeRegistry(plugins: plugins)) {
            await main()
        }
    }
}

/// What commands share for one invocation.
enum CommandEnvironment {
    @TaskLocal static var registry = NodeRegistry(plugins: BuiltinPlugins.all)
}

/// Exit codes documented in the README.
enum ExitCodes {
    static let failure = ExitCode(1)
    static let invalidPipeline = ExitCode(2)
}
