import ArgumentParser
import Camflow
import Foundation

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
