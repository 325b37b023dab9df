import ArgumentParser
import Camflow
public import Logging

// What every command of a camflow binary prints and checks the same way,
// public so that commands a binary adds (sim, broker, bench) behave alike.

/// Writes a line to standard output at once (unbuffered: scripts wait for it).
public func printOutput(_ text: String) {
    try? OutputStream.standardOutput.write(text + "\n")
}

/// Writes a line to standard error.
public func printError(_ text: String) {
    try? OutputStream.standardError.write(text + "\n")
}

/// Sends every log line to stderr at `level` and above; only the executable does this.
public func bootstrapLogging(_ level: Logger.Level) {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
}

/// Checks durations given on the command line, naming the option.
public func validateDurations(_ options: [(name: String, value: String?)], positive: Bool = false) throws {
    for (name, value) in options {
        guard let value else { continue }
        guard let duration = Units.duration(value), !positive || duration > .zero else {
            let kind = positive ? "a positive duration" : "a duration"
            throw ValidationError("\(name): expected \(kind) such as 500ms, 5s or 2m, found '\(value)'")
        }
    }
}
