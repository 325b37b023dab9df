public import ArgumentParser
public import Camflow
#if canImport(Glibc)
import Glibc
#endif

/// The `camflow` command line, composed by the executable that calls
/// ``main(plugins:commands:)``: it names the plugins whose node types the
/// pipelines may use and the subcommands beyond the standard ones. A binary
/// links exactly what it names.
public struct CamflowCommand: AsyncParsableCommand {
    /// The commands every binary has: they need nothing but the engine and
    /// the registered node types.
    public static let standardCommands: [any ParsableCommand.Type] = [
        RunCommand.self, ValidateCommand.self, GraphCommand.self, NodesCommand.self,
    ]

    public static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: CommandEnvironment.commandName,
            abstract: "Runs declarative pipelines over live camera streams.",
            discussion: """
                Exit codes: 0 success (also after Ctrl-C or SIGTERM once the pipeline drained), \
                1 a node failed or the run could not start, 2 the pipeline file is missing or invalid, \
                64 wrong command-line usage.
                """,
            subcommands: standardCommands + CommandEnvironment.extraCommands)
    }

    public init() {}

    /// Parses the command line and runs it with the node types of `plugins`
    /// (the engine's own nodes are always there) and `commands` after the
    /// standard ones.
    /// - Parameter name: the program's name in usage and in the hints of
    ///   errors (`see 'NAME nodes log'`); by default the name it was run by.
    public static func main(name: String? = nil, plugins: [any CamflowPlugin.Type],
                            commands: [any ParsableCommand.Type] = []) async {
        let name = name ?? programName(CommandLine.arguments.first)
        // A file size limit (ulimit -f) must fail a write with EFBIG, which
        // file-record reports and retries, not kill the process.
        signal(SIGXFSZ, SIG_IGN)
        await CommandEnvironment.$registry.withValue(NodeRegistry(plugins: plugins)) {
            await CommandEnvironment.$extraCommands.withValue(commands) {
                await CommandEnvironment.$commandName.withValue(name) {
                    await main()
                }
            }
        }
    }
}

extension CamflowCommand {
    /// The last path component of `argument0` (`/usr/local/bin/my-camflow`
    /// is `my-camflow`); `camflow` when there is none.
    static func programName(_ argument0: String?) -> String {
        let last = argument0?.split(separator: "/").last.map(String.init) ?? ""
        // A name that could forge or break a hint's line is not repeated.
        guard !last.isEmpty, last.count <= 64, last.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F && $0 != "'" })
        else { return "camflow" }
        return last
    }
}

/// What commands share for one invocation: set by ``CamflowCommand/main(name:plugins:commands:)``.
enum CommandEnvironment {
    @TaskLocal static var registry = NodeRegistry(plugins: [])
    @TaskLocal static var extraCommands: [any ParsableCommand.Type] = []
    @TaskLocal static var commandName = "camflow"
}

/// Exit codes documented in the README, for commands of any binary.
public enum ExitCodes {
    public static let failure = ExitCode(1)
    public static let invalidPipeline = ExitCode(2)
}
