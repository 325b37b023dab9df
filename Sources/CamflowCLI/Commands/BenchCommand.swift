import ArgumentParser
import Camflow

/// `camflow bench ...`: benchmarks printed as tables. Build with `-c release`.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run a benchmark and print a table (build with -c release for real numbers).",
        subcommands: [EngineBenchCommand.self])
}

/// `camflow bench engine`: packets through chains of pass-through nodes.
struct EngineBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "Packets per second and ns per hop through chains of 1, 4 and 16 pass-through nodes.",
        discussion: """
            A source emits packets that share one payload buffer, through N pass-through nodes, \
            into a null sink. The same packet rate for 64 B and 1 MiB payloads shows that no \
            payload is copied. Peak memory is the process's maximum resident set so far.
            """)

    @Option(help: "Packets per run.")
    var packets: Int = 1_000_000

    @Option(help: "Chain lengths to run, comma-separated.")
    var chains: String = "1,4,16"

    func validate() throws {
        guard packets > 0 else { throw ValidationError("--packets must be positive") }
        guard parsedChains.count > 0 else { throw ValidationError("--chains: expected numbers such as 1,4,16") }
    }

    private var parsedChains: [Int] { chains.split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 } }

    func run() async throws {
        #if DEBUG
        printError("note: this is a debug build; build with 'swift build -c release' for real numbers")
        #endif
        var rows = [["chain", "payload", "packets", "seconds", "packets/s", "ns/hop", "payload GB/s", "peak RSS"]]
        for chain in parsedChains {
            for payload in [64, 1 << 20] {
                let result = try await EngineBenchmark(chainLength: chain, payloadSize: payload, packets: packets).run()
                rows.append([
                    "\(chain)", payload == 64 ? "64 B" : "1 MiB", "\(packets)",
                    result.seconds.text(3), result.packetsPerSecond.grouped,
                    result.nanosecondsPerHop.text(1),
                    (Double(packets) * Double(payload) / result.seconds / 1e9).text(1),
                    "\(result.peakResidentKiB / 1024) MiB",
                ])
                printError("done: chain \(chain), payload \(payload) B")
            }
        }
        print(TextTable.render(rows))
    }
}

extension Double {
    fileprivate func text(_ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let value = (self * scale).rounded() / scale
        var s = String(value)
        if let dot = s.firstIndex(of: ".") {
            let decimals = s.distance(from: dot, to: s.endIndex) - 1
            if decimals < digits { s += String(repeating: "0", count: digits - decimals) }
        }
        return s
    }

    fileprivate var grouped: String {
        let digits = String(Int64(self.rounded()))
        var out = ""
        for (i, c) in digits.reversed().enumerated() {
            if i > 0 && i % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return String(out.reversed())
    }
}
