import ArgumentParser
import Camflow
import CamflowCLI
import Foundation

/// `camflow recordings DIR`: what a file-record sink wrote there.
struct RecordingsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recordings",
        abstract: "List the recordings in a file-record root (its index.jsonl), oldest first.",
        discussion: "Files deleted by retention are left out. --at finds the file holding a moment of media time.")

    @Argument(help: "The recording root: the directory that holds index.jsonl.")
    var directory: String

    @Option(help: "Only the recording of this stream that covers this media time (seconds).")
    var at: Double?

    @Option(help: "Only recordings of this stream.")
    var stream: String?

    func run() throws {
        let indexPath = directory + "/" + RecordingIndex.fileName
        let entries: [RecordingIndexEntry]
        do {
            guard try RecordingIndex.identity(root: directory) != nil else {
                printError("error: no recordings index at '\(UntrustedText.printable(indexPath, limit: 512))'")
                throw ExitCodes.invalidPipeline
            }
            entries = try RecordingIndex.read(root: directory)
        } catch let error as RecordingIndexError {
            // An index that is there but cannot be read is not "no recordings": say why.
            printError("error: \(UntrustedText.printable(error.description, limit: 1024))")
            throw ExitCodes.invalidPipeline
        }
        var rows = [["file", "stream", "start s", "end s", "length s", "keyframes", "size", "recorded at"]]
        let formatter = ISO8601DateFormatter()
        for entry in entries {
            if let stream, stream != entry.stream { continue }
            if let at, !(entry.start.map { $0 <= at } ?? false && entry.end.map { at < $0 } ?? false) { continue }
            rows.append([
                entry.path, entry.stream, entry.start.map { String(format: "%.3f", $0) } ?? "-",
                entry.end.map { String(format: "%.3f", $0) } ?? "-",
                entry.start.flatMap { s in entry.end.map { String(format: "%.1f", $0 - s) } } ?? "-",
                "\(entry.keyframes)", "\(entry.bytes)",
                formatter.string(from: Date(timeIntervalSince1970: entry.wallStart)),
            ])
        }
        print(TextTable.render(rows))
    }
}
