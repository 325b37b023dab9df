import CamflowTesting
import Camflow
import Foundation
import Logging
@testable import MP4Plugin
import NIOCore
import Synchronization
import Testing

/// Packets stats cannot read are left out of its numbers, and it says so:
/// once a stream, however many there are.
@Suite struct StatsUnreadableTests {
    @Test func fragmentsThatDoNotParse_areLoggedOnceAStream() async throws {
        let file = try Data(contentsOf: fixtures.appendingPathComponent("h264-baseline.mp4"))
        let initSegment = Packet(kind: .initSegment, stream: "cam", payload: ByteBuffer(bytes: file.prefix(790)))
        let garbage = (0..<3).map { index in
            Packet(kind: .fragment, stream: "cam", sequence: UInt64(index + 1),
                   payload: ByteBuffer(bytes: [0, 0, 0, 16] + Array("moof".utf8) + [0, 0, 0, 8, 0, 0, 0, 0]))
        }
        let lines = LineStore()
        let logger = Logger(label: "test") { _ in CapturedLines(lines: lines) }
        _ = try await TestHarness(plugins: [MP4Plugin.self],
                                  nodeTypes: [PacketSource.type([initSegment] + garbage, kinds: [.initSegment, .fragment])],
                                  logger: logger).run([
            NodeSpec(id: "src", type: "packets"),
            NodeSpec(id: "stats", type: "stats", inputs: ["src"], options: ["interval": "1s"]),
        ], collect: ["stats"])
        let warnings = lines.all.filter { $0.contains("does not parse is left out of the statistics") }
        #expect(warnings.count == 1, "\(lines.all)")
        #expect(warnings.first?.hasPrefix("stream cam: a fragment") == true)
    }
}

/// Messages logged, in order.
private final class LineStore: Sendable {
    private let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }
    func append(_ line: String) { lines.withLock { $0.append(line) } }
}

/// A log handler that keeps each message.
private struct CapturedLines: LogHandler {
    let lines: LineStore
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        lines.append(event.message.description)
    }
}
