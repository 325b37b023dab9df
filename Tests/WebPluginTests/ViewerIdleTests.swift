#if canImport(Glibc)
import Glibc
#endif
import Camflow
import CamflowTesting
import Logging
import Synchronization
import Testing
@testable import WebPlugin

/// A camera-protocol viewer that says nothing is closed after the web node's
/// 'idle-timeout' of the pipeline's clock: tested by moving a manual clock,
/// in milliseconds of real time.
@Suite struct ViewerIdleTests {
    @Test func silence_endsAtTheTimeout_andEachMessageMovesIt() async throws {
        let clock = ManualClock()
        let watch = SilenceWatch(timeout: .seconds(60), clock: clock)
        let ended = OneShotSignal()
        let waiting = Task {
            try await watch.waitForSilence()
            ended.fire()
        }
        try await clock.waitForSleepers(1)
        await clock.advance(by: .seconds(50))
        watch.heard()
        // Past the first deadline: the wait wakes, finds the client spoke at 50 s, and waits until 110 s.
        await clock.advance(by: .seconds(20))
        try await clock.waitForSleepers(1)
        #expect(!ended.isFired, "a client heard 20 s ago is not idle")
        await clock.advance(by: .seconds(40))
        try await waiting.value
        #expect(ended.isFired)
    }

    @Test func aCancelledWait_throws_andLeavesNoSleeper() async throws {
        let clock = ManualClock()
        let watch = SilenceWatch(timeout: .seconds(60), clock: clock)
        let waiting = Task { try await watch.waitForSilence() }
        try await clock.waitForSleepers(1)
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        #expect(clock.sleepers == 0)
    }

    /// The whole path: a web node on a manual clock, a WebSocket client on
    /// `/ws` that sends one command and then nothing, closed by the server
    /// when the clock passes the idle timeout, not before.
    @Test func aSilentViewer_isClosedByTheWebNode_whenTheClockPassesTheIdleTimeout() async throws {
        let clock = ManualClock()
        let lines = LogLines()
        var registry = NodeRegistry(plugins: [WebPlugin.self])
        registry.register(NodeType(name: "quiet-source", summary: "Emits nothing until stopped.", accepts: [],
                                   emits: .kinds([.initSegment, .fragment]), make: { _ in QuietSource() }), from: "test")
        let graph = try GraphValidator(registry: registry).validate(PipelineSpec(name: "idle", nodes: [
            NodeSpec(id: "source", type: "quiet-source"),
            NodeSpec(id: "web", type: "web", inputs: ["source"], options: ["bind": "127.0.0.1:0", "idle-timeout": "60s"]),
        ]))
        let pipeline = Pipeline(graph: graph, logger: Logger(label: "idle") { _ in LineRecorder(lines: lines) },
                                metricsInterval: nil, clock: clock)
        let running = Task { try await pipeline.run() }
        defer { pipeline.requestStop() }
        try await waitUntil("the web node listens") { lines.port != nil }
        let port = try #require(lines.port)

        let client = try await BlockingIOThread.run(name: "test-viewer") { try RawWebSocket(port: port) }
        // Its answer says the server has heard the message before the clock moves.
        let answer = try await BlockingIOThread.run(name: "test-viewer") {
            try client.sendText("hello")
            return try client.readFrame()
        }
        #expect(answer.opcode == 0x1 && String(decoding: answer.payload, as: UTF8.self) == "error: unknown command 'hello'")
        // The viewer's silence and the node's once-a-second metrics beat sleep on the clock.
        try await clock.waitForSleepers(2)
        await clock.advance(by: .milliseconds(59_900))
        #expect(!lines.contains("closed: no message"), "not idle before the timeout")
        await clock.advance(by: .milliseconds(200))
        let close = try await BlockingIOThread.run(name: "test-viewer") { try client.readFrame() }
        #expect(close.opcode == 0x8, "a close frame")
        try await waitUntil("the server says why") { lines.contains("viewer 1 closed: no message for 1m0s") }
        pipeline.requestStop()
        try await running.value
    }
}

/// A source with nothing to say, which runs until the pipeline stops.
private struct QuietSource: Node {
    func run(_ context: NodeContext) async throws {
        await OneShotSignal().wait()
    }
}

/// The log lines of a pipeline, and the port its web node said it serves on.
private final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])

    func append(_ line: String) { lines.withLock { $0.append(line) } }

    func contains(_ text: String) -> Bool { lines.withLock { $0.contains { $0.contains(text) } } }

    var port: Int? {
        let prefix = "serving http://127.0.0.1:"
        return lines.withLock { lines in
            lines.lazy.compactMap { line in line.range(of: prefix).flatMap { Int(line[$0.upperBound...].prefix { $0.isNumber }) } }.first
        }
    }
}

private struct LineRecorder: LogHandler {
    let lines: LogLines
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

/// Just enough of a WebSocket client over a blocking socket (used only on a
/// ``BlockingIOThread``): the upgrade, masked text frames out, short frames
/// in. Reads time out after 30 s so a failure cannot hang.
private final class RawWebSocket: Sendable {
    let socket: Int32

    init(port: Int) throws {
        socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure("connect: errno \(errno)") }
        try send(Array("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".utf8))
        var head: [UInt8] = []
        while Array(head.suffix(4)) != [13, 10, 13, 10] { head.append(try readByte()) }
        let text = String(decoding: head, as: UTF8.self)
        guard text.hasPrefix("HTTP/1.1 101") else { throw Failure("no upgrade: \(text)") }
    }

    deinit { close(socket) }

    func sendText(_ text: String) throws {
        let payload = Array(text.utf8)
        let mask: [UInt8] = [1, 2, 3, 4]
        try send([0x81, 0x80 | UInt8(payload.count)] + mask + payload.enumerated().map { $0.element ^ mask[$0.offset % 4] })
    }

    /// The next frame the server sends (unmasked, as servers send them).
    func readFrame() throws -> (opcode: UInt8, payload: [UInt8]) {
        let opcode = try readByte() & 0x0F
        var length = Int(try readByte() & 0x7F)
        if length == 126 { length = Int(try readByte()) << 8 | Int(try readByte()) }
        guard length < 127 else { throw Failure("a frame longer than this client reads") }
        return (opcode, try (0..<length).map { _ in try readByte() })
    }

    private func send(_ bytes: [UInt8]) throws {
        guard bytes.withUnsafeBytes({ Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count else {
            throw Failure("send: errno \(errno)")
        }
    }

    private func readByte() throws -> UInt8 {
        var byte: UInt8 = 0
        guard recv(socket, &byte, 1, 0) == 1 else { throw Failure("recv: errno \(errno) (nothing within 30 s, or closed)") }
        return byte
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}
