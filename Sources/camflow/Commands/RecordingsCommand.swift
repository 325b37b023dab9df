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
        let indexPath = directory + "/index.jsonl"
        guard let text = try? String(contentsOfFile: indexPath, encoding: .utf8) else {
            printError("error: no recordings index at '\(indexPath)'")
            throw ExitCodes.invalidPipeline
        }
        var rows = [["file", "stream", "start s", "end s", "length s", "keyframes", "size", "recorded at"]]
        for line in text.split(separator: "\n") {
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
                  let path = object["path"] as? String else { continue }
            let full = path.hasPrefix("/") ? path : directory + "/" + path
            guard FileManager.default.fileExists(atPath: full) else { continue }
            let name = object["stream"] as? String ?? ""
            if let stream, stream != name { continue }
            let start = (object["start"] as? NSNumber)?.doubleValue
            let end = (object["end"] as? NSNumber)?.doubleValue
            if let at, !(start.map { $0 <= at } ?? false && end.map { at < $0 } ?? false) { continue }
            let wall = (object["wall_start"] as? NSNumber).map { Date(timeIntervalSince1970: $0.doubleValue) }
            rows.append([
                path, name, start.map { String(format: "%.3f", $0) } ?? "-", end.map { String(format: "%.3f", $0) } ?? "-",
                start.flatMap { s in end.map { String(format: "%.1f", $0 - s) } } ?? "-",
                "\((object["keyframes"] as? NSNumber)?.intValue ?? 0)",
                "\((object["bytes"] as? NSNumber)?.intValue ?? 0)",
                wall.map { ISO8601DateFormatter().string(from: $0) } ?? "-",
            ])
        }
        print(TextTable.render(rows))
    }
}
