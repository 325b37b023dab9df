import ArgumentParser
import Camflow
import Foundation
import Logging

/// Reading and checking a pipeline file the same way for every command.
enum PipelineFile {
    /// Loads and validates `path`, printing every problem to stderr.
    /// - Throws: `ExitCode` 2 when the file is missing or invalid.
    static func load(_ path: String, registry: NodeRegistry) throws -> PipelineGraph {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            printError("error: cannot read pipeline file '\(path)': \(Self.reason(error))")
            throw ExitCodes.invalidPipeline
        }
        do {
            let spec = try PipelineLoader(environment: ProcessInfo.processInfo.environment).load(text, file: path)
            return try GraphValidator(registry: registry).validate(spec)
        } catch {
            printError(error.description)
            let count = error.errors.count
            printError("\(path): \(count) error\(count == 1 ? "" : "s")")
            throw ExitCodes.invalidPipeline
        }
    }

    private static func reason(_ error: any Error) -> String {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError,
           underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if nsError.domain == NSCocoaErrorDomain, nsError.code == NSFileReadNoSuchFileError {
            return "no such file"
        }
        return nsError.localizedDescription
    }
}

/// Writes a line to standard output at once (unbuffered: scripts wait for it).
func printOutput(_ text: String) {
    try? OutputStream.standardOutput.write(text + "\n")
}

/// Writes a line to standard error.
func printError(_ text: String) {
    try? OutputStream.standardError.write(text + "\n")
}

/// Sends every log line to stderr at `level` and above; only the executable does this.
func bootstrapLogging(_ level: Logger.Level) {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
}

/// Checks durations given on the command line, naming the option.
func validateDurations(_ options: [(name: String, value: String?)], positive: Bool = false) throws {
    for (name, value) in options {
        guard let value else { continue }
        guard let duration = Units.duration(value), !positive || duration > .zero else {
            let kind = positive ? "a positive duration" : "a duration"
            throw ValidationError("\(name): expected \(kind) such as 500ms, 5s or 2m, found '\(value)'")
        }
    }
}
