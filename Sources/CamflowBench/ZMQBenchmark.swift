import ArgumentParser
import Camflow
import CamflowCLI
import CZeroMQ
import Foundation
import Logging
import NIOCore
import Synchronization
import ZeroMQPlugin

/// `camflow bench zmq`: the zmq-publish node against a bare libzmq PUB loop,
/// both to a SUB socket on its own thread over tcp://127.0.0.1.
struct ZMQBenchmark {
    struct Result {
        var sent: Int
        var received: Int
        var seconds: Double
        var latenciesMicroseconds: [Double]

        /// The run with the median receive rate.
        static func median(_ runs: [Result]) -> Result {
            let sorted = runs.sorted { Double($0.received) / max($0.seconds, 1e-9) < Double($1.received) / max($1.seconds, 1e-9) }
            return sorted[sorted.count / 2]
        }
    }

    /// Receives on a thread of its own until `expected` messages or `idle` without one.
    final class Subscriber: Sendable {
        let endpoint: String
        private let state = Mutex<(received: Int, latencies: [Double], first: UInt64, last: UInt64)>((0, [], 0, 0))
        private let done = DispatchSemaphore(value: 0)

        /// `endpoint` nil: bind a free port (read it from ``endpoint``), else connect.
        init(endpoint: String?, expected: Int, measureLatency: Bool, idle: Duration = .seconds(2)) throws {
            let socket = try ZMQSocket(.sub)
            try socket.set(ZMQ_RCVHWM, 0)
            try socket.subscribe("")
            if let endpoint {
                try socket.connect(endpoint)
                self.endpoint = endpoint
            } else {
                try socket.bind("tcp://127.0.0.1:*")
                self.endpoint = socket.lastEndpoint
            }
            // The socket moves to the receiving thread for good; starting a thread is a memory barrier.
            nonisolated(unsafe) let owned = socket
            let thread = Thread { [self] in
                defer { self.done.signal() }
                var count = 0
                while count < expected, let parts = try? owned.receive(timeout: idle) {
                    let now = MonotonicClock.now()
                    count += 1
                    let created = measureLatency && parts.count > 1 ? Self.createdAt(parts[1]) : nil
                    self.state.withLock { state in
                        state.received = count
                        if state.first == 0 { state.first = now }
                        state.last = now
                        if let created { state.latencies.append(Double(now &- created) / 1000) }
                    }
                }
                owned.close()
            }
            thread.start()
        }

        /// `received_at_ns` from a camflow header, or the 8-byte stamp of the bare loop.
        static func createdAt(_ header: ByteBuffer) -> UInt64? {
            if header.getInteger(at: header.readerIndex, as: UInt8.self) != UInt8(ascii: "{") {
                return header.getInteger(at: header.readerIndex)
            }
            guard let text = header.getString(at: header.readerIndex, length: header.readableBytes),
                  let key = text.range(of: "\"received_at_ns\":") else { return nil }
            return UInt64(text[key.upperBound...].prefix { $0.isNumber })
        }

        func wait() -> (received: Int, seconds: Double, latencies: [Double]) {
            done.wait()
            return state.withLock { ($0.received, Double($0.last &- $0.first) / 1e9, $0.latencies) }
        }
    }

    /// A bare PUB socket sending `count` messages of `size` bytes, `rate` per second (nil: flat out).
    static func bare(count: Int, size: Int, rate: Double?) async throws -> Result {
        let socket = try ZMQSocket(.pub)
        try socket.set(ZMQ_SNDHWM, 0)
        try socket.bind("tcp://127.0.0.1:*")
        let subscriber = try Subscriber(endpoint: socket.lastEndpoint, expected: count, measureLatency: rate != nil)
        try await Task.sleep(for: .milliseconds(300))  // the subscription reaches the publisher
        var payload = ByteBuffer()
        payload.writeRepeatingByte(0x42, count: size)
        let topic = ByteBuffer(string: "cam1/frame")
        // The same bytes on the wire as camflow's header: an 8-byte stamp padded to its length.
        let headerLength = PacketHeader.json(PacedFrames.packet(0, payload: payload)).utf8.count
        let start = ContinuousClock.now
        for index in 0..<count {
            if let rate { try await pace(index, rate: rate, start: start) }
            var stamp = ByteBuffer()
            stamp.writeInteger(MonotonicClock.now())
            stamp.writeRepeatingByte(0x20, count: headerLength - 8)
            try socket.send([topic, stamp, payload])
        }
        let result = subscriber.wait()
        socket.close()
        return Result(sent: count, received: result.received, seconds: result.seconds, latenciesMicroseconds: result.latencies)
    }

    /// The same through a pipeline: a source of `count` packets into `zmq-publish`.
    static func node(count: Int, size: Int, rate: Double?) async throws -> Result {
        // The subscriber binds and the node connects: no port to guess.
        let subscriber = try Subscriber(endpoint: nil, expected: count, measureLatency: rate != nil)
        let endpoint = subscriber.endpoint
        let source = NodeType(name: "bench-frames", summary: "Frames at a rate.", accepts: [], emits: .kinds(.frame)) { _ in
            PacedFrames(count: count, size: size, rate: rate)
        }
        var registry = NodeRegistry(plugins: [ZeroMQPlugin.self])
        registry.register(source, from: "bench")
        let graph = try GraphValidator(registry: registry).validate(PipelineSpec(name: "bench-zmq", nodes: [
            NodeSpec(id: "cam1", type: "bench-frames"),
            NodeSpec(id: "publish", type: "zmq-publish", inputs: ["cam1"], options: [
                "endpoint": .scalar(endpoint), "connect": "true", "sndhwm": "0", "latch": "false",
                "wait-for-subscribers": "1",
            ]),
        ]))
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        try await Pipeline(graph: graph, logger: logger, metricsInterval: nil).run()
        let result = subscriber.wait()
        return Result(sent: count, received: result.received, seconds: result.seconds, latenciesMicroseconds: result.latencies)
    }

    static func pace(_ index: Int, rate: Double, start: ContinuousClock.Instant) async throws {
        let due = start + .nanoseconds(Int64(Double(index) / rate * 1e9))
        if due > ContinuousClock.now { try await Task.sleep(until: due, clock: .continuous) }
    }
}

/// Emits `count` frame packets sharing one payload, stamped at creation.
struct PacedFrames: Node {
    let count: Int
    let size: Int
    let rate: Double?

    func run(_ context: NodeContext) async throws {
        var payload = ByteBuffer()
        payload.writeRepeatingByte(0x42, count: size)
        // Paced runs measure latency: start once the subscription has arrived, as the bare loop does.
        if rate != nil { try await Task.sleep(for: .milliseconds(300)) }
        let start = ContinuousClock.now
        for index in 0..<count {
            if let rate { try await ZMQBenchmark.pace(index, rate: rate, start: start) }
            await context.emit(Self.packet(index, payload: payload))
        }
    }

    /// A video frame as a camera's would look.
    static func packet(_ index: Int, payload: ByteBuffer) -> Packet {
        Packet(kind: .frame, stream: "cam1", sequence: UInt64(index), payload: payload,
               media: MediaInfo(track: 1, codec: "avc1.4D0033", timescale: 90000, dts: Int64(index) * 3600,
                                keyframe: index % 50 == 0))
    }
}

/// `camflow bench zmq`: zmq-publish against bare libzmq.
struct ZMQBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zmq",
        abstract: "zmq-publish against a bare libzmq PUB loop: messages/s, MB/s, and latency at 100 cameras' rate.",
        discussion: """
            Both publish three-frame messages over tcp://127.0.0.1 to a SUB socket on a thread of its \
            own; rates count what the subscriber received, from its first message to its last. The \
            latency rows pace 2,500 frames/s of 20 KB (100 cameras at 25 fps, 4 Mbit/s each) and \
            measure from packet creation to receipt; the throughput rows do not measure latency. \
            Both send the same bytes: the bare loop's header is a timestamp padded to the length \
            of camflow's JSON header, so the ratio is the cost of the pipeline and of building headers. \
            The two paths run in turn, --runs times per size; the table shows each one's median run.
            """)

    @Option(help: "Scale the message counts (1 = 200k/100k/10k for 64 B/10 KiB/200 KiB).")
    var scale = 1.0

    @Option(help: "Runs of each path per payload size, alternated; the table shows the median rate.")
    var runs = 3

    @Option(help: "Only these payload sizes in bytes, comma-separated (64, 10240, 204800); default: all three and the paced rows.")
    var payloads: String?

    func run() async throws {
        warnIfDebugBuild()
        var rows = [["path", "payload", "messages", "received", "msg/s", "MB/s", "vs bare", "p50 µs", "p99 µs"]]
        func row(_ name: String, _ size: Int, _ result: ZMQBenchmark.Result, bare: ZMQBenchmark.Result?) -> [String] {
            let rate = Double(result.received) / max(result.seconds, 1e-9)
            let bareRate = bare.map { Double($0.received) / max($0.seconds, 1e-9) }
            return [name, size >= 1024 ? "\(size / 1024) KiB" : "\(size) B", "\(result.sent)", "\(result.received)",
                    rate.grouped, (rate * Double(size + 40) / 1e6).text(1), bareRate.map { (rate / $0).text(2) } ?? "-",
                    result.latenciesMicroseconds.percentile(50).map { $0.text(0) } ?? "-",
                    result.latenciesMicroseconds.percentile(99).map { $0.text(0) } ?? "-"]
        }
        let chosen = try payloads.map { list in
            try list.split(separator: ",").map { item in
                guard let size = Int(item.trimmingCharacters(in: .whitespaces)), [64, 10 * 1024, 200 * 1024].contains(size) else {
                    throw ValidationError("--payloads: '\(item)' is not one of 64, 10240, 204800")
                }
                return size
            }
        }
        for (size, count) in [(64, 200_000), (10 * 1024, 100_000), (200 * 1024, 10_000)] where chosen?.contains(size) ?? true {
            let messages = max(100, Int(Double(count) * scale))
            // Alternated, so both paths see the same machine; the median run of each is shown.
            var bareRuns: [ZMQBenchmark.Result] = [], nodeRuns: [ZMQBenchmark.Result] = []
            for _ in 0..<max(1, runs) {
                bareRuns.append(try await ZMQBenchmark.bare(count: messages, size: size, rate: nil))
                nodeRuns.append(try await ZMQBenchmark.node(count: messages, size: size, rate: nil))
            }
            let bare = ZMQBenchmark.Result.median(bareRuns), node = ZMQBenchmark.Result.median(nodeRuns)
            rows.append(row("bare libzmq", size, bare, bare: nil))
            rows.append(row("zmq-publish", size, node, bare: bare))
            printError("done: \(size) B")
        }
        if chosen == nil {
            let paced = max(100, Int(10_000 * scale))
            let bare = try await ZMQBenchmark.bare(count: paced, size: 20_000, rate: 2_500)
            let node = try await ZMQBenchmark.node(count: paced, size: 20_000, rate: 2_500)
            rows.append(row("bare, 100 cameras", 20_000, bare, bare: nil))
            rows.append(row("zmq-publish, 100 cameras", 20_000, node, bare: bare))
        }
        print("libzmq \(ZMQContext.version)")
        print(TextTable.render(rows))
    }
}
