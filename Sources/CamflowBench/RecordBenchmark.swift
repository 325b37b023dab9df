import ArgumentParser
import Camflow
import CamflowCLI
import InstarSimulator
import FilesPlugin
import Foundation
import InstarPlugin
import Logging
import MP4Plugin
import NIOCore

/// `camflow bench record`: file-replay → mp4-parse → file-record against `cp`.
enum RecordBenchmark {
    struct Row {
        var name: String
        var bytes: Int
        var seconds: Double
    }

    /// A fragmented MP4 of about `megabytes`, made by looping `media` with continuous timestamps.
    static func makeInput(from media: Data, megabytes: Int, at path: String) throws -> Int {
        let looped = try SimulatedMedia(file: ByteBuffer(bytes: media))
        guard let handle = FileHandle(forWritingAtPath: path) ?? {
            FileManager.default.createFile(atPath: path, contents: nil) ? FileHandle(forWritingAtPath: path) : nil
        }() else { throw BenchmarkError(message: "cannot write \(path)") }
        defer { try? handle.close() }
        try handle.truncate(atOffset: 0)
        var written = 0
        handle.write(Data(looped.initSegment.readableBytesView))
        written += looped.initSegment.readableBytes
        var loop = 0
        while written < megabytes * 1_000_000 {
            for index in looped.fragments.indices {
                let fragment = looped.fragment(index, loop: loop)
                handle.write(Data(fragment.readableBytesView))
                written += fragment.readableBytes
            }
            loop += 1
        }
        return written
    }

    static func copy(_ input: String, to directory: String) throws -> Row {
        let target = directory + "/copy.mp4"
        let clock = ContinuousClock()
        let start = clock.now
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/cp")
        process.arguments = [input, target]
        try process.run()
        process.waitUntilExit()
        let seconds = (clock.now - start).seconds
        let size = (try FileManager.default.attributesOfItem(atPath: target)[.size] as? Int) ?? 0
        try FileManager.default.removeItem(atPath: target)
        return Row(name: "cp", bytes: size, seconds: seconds)
    }

    static func record(_ input: String, to directory: String, fsync: String) async throws -> Row {
        let nodes = [
            NodeSpec(id: "cam1", type: "file-replay", options: ["path": .scalar(input), "chunk-size": "256KiB"]),
            NodeSpec(id: "parse", type: "mp4-parse", inputs: ["cam1"]),
            NodeSpec(id: "record", type: "file-record", inputs: ["parse"], options: [
                "path": .scalar(directory + "/rec-\(fsync)/{stream}/%H%M%S.mp4"), "segment": "60s", "fsync": .scalar(fsync),
            ]),
        ]
        let graph = try GraphValidator(registry: NodeRegistry(plugins: [FilesPlugin.self, MP4Plugin.self]))
            .validate(PipelineSpec(name: "bench-record", nodes: nodes))
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let pipeline = Pipeline(graph: graph, logger: logger, metricsInterval: nil)
        let clock = ContinuousClock()
        let start = clock.now
        try await pipeline.run()
        let seconds = (clock.now - start).seconds
        let snapshot = pipeline.snapshot()
        guard snapshot.node("record")?.counters.dropped == 0 else { throw BenchmarkError(message: "the recorder dropped data") }
        try FileManager.default.removeItem(atPath: directory + "/rec-\(fsync)")
        return Row(name: "file-record, fsync \(fsync)", bytes: Int(snapshot.node("cam1")?.counters.bytesOut ?? 0),
                   seconds: seconds)
    }
}

/// `camflow bench record`: recording throughput against cp.
struct RecordBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Write MB/s of file-replay -> mp4-parse -> file-record against cp of the same bytes.",
        discussion: """
            Makes a fragmented MP4 of --megabytes by looping the 1440p bench clip with continuous \
            timestamps, then copies it with cp and records it with fsync on-close and every-fragment, \
            in --directory (default: the temporary directory), all in one run.
            """)

    @Option(help: "Size of the input in megabytes.")
    var megabytes = 300

    @Option(help: "Where to write (the file system under test).")
    var directory: String?

    @Option(help: "A fragmented MP4 to loop instead of the generated clip.")
    var media: String?

    func run() async throws {
        warnIfDebugBuild()
        let source = try BenchTools.clip(media)
        let directory = self.directory ?? FileManager.default.temporaryDirectory.appendingPathComponent("camflow-bench-record").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let input = directory + "/input.mp4"
        let bytes = try RecordBenchmark.makeInput(from: try Data(contentsOf: URL(fileURLWithPath: source)),
                                                  megabytes: megabytes, at: input)
        defer { try? FileManager.default.removeItem(atPath: input) }
        printError("input: \(bytes) bytes")
        let copy = try RecordBenchmark.copy(input, to: directory)
        let onClose = try await RecordBenchmark.record(input, to: directory, fsync: "on-close")
        let everyFragment = try await RecordBenchmark.record(input, to: directory, fsync: "every-fragment")
        var rows = [["writer", "MB", "seconds", "MB/s", "vs cp"]]
        let cpRate = Double(copy.bytes) / 1e6 / copy.seconds
        for row in [copy, onClose, everyFragment] {
            let rate = Double(row.bytes) / 1e6 / row.seconds
            rows.append([row.name, (Double(row.bytes) / 1e6).text(1), row.seconds.text(3), rate.text(1), (rate / cpRate).text(2)])
        }
        print("directory: \(directory)")
        print(TextTable.render(rows))
    }
}

/// Benchmarks of a debug build measure the debug build.
