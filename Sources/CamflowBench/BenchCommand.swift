public import ArgumentParser
import Camflow
import CamflowCLI
import Foundation
import Logging

/// `camflow bench ...`: benchmarks printed as tables. Build with `-c release`.
public struct BenchCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run a benchmark and print a table (build with -c release for real numbers).",
        subcommands: [EngineBenchCommand.self, MP4BenchCommand.self, IngestBenchCommand.self, ZMQBenchCommand.self,
                      RecordBenchCommand.self, WebBenchCommand.self, RTSPBenchCommand.self, LatencyShareBenchCommand.self,
                      LatencyBenchCommand.self])

    public init() {}
}

func warnIfDebugBuild() {
    #if DEBUG
    printError("note: this is a debug build; build with 'swift build -c release' for real numbers")
    #endif
}

extension Double {
    func text(_ digits: Int) -> String {
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

    var grouped: String {
        let digits = String(Int64(self.rounded()))
        var out = ""
        for (i, c) in digits.reversed().enumerated() {
            if i > 0 && i % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return String(out.reversed())
    }
}

struct LiveBenchOptions: ParsableArguments {
    @Option(help: "Measured seconds per count.")
    var seconds = 10

    @Option(help: "Seconds to connect and settle before measuring.")
    var warmup = 3

    @Option(help: "A fragmented MP4 for the cameras; default: the generated 1440p clip.")
    var media: String?

    /// `1,10,100` as numbers; anything else is left out.
    static func counts(_ list: String) -> [Int] {
        list.split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 }
    }

    func validate(_ counts: [Int], option: String) throws {
        guard !counts.isEmpty else { throw ValidationError("\(option): expected numbers such as 1,10,100") }
        guard seconds > 0, warmup >= 0 else { throw ValidationError("--seconds must be positive") }
    }
}
