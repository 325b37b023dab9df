import CamflowTesting
import Foundation
import ISOBMFF
import NIOCore
import Testing

let fixturesDirectory: URL = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
        url.deleteLastPathComponent()
        let candidate = url.appendingPathComponent("Tests/Fixtures")
        if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
    }
    return URL(fileURLWithPath: "Tests/Fixtures")
}()

func fixture(_ name: String) throws -> ByteBuffer {
    ByteBuffer(bytes: try Data(contentsOf: fixturesDirectory.appendingPathComponent(name)))
}

/// Everything a parse produced, in a comparable form.
struct ParseResult: Equatable {
    var initSegments: [[Track]] = []
    var samples: [Sample] = []
    var sampleBytes: [[UInt8]] = []
    var fragmentSequence: [UInt32] = []
    var skipped: [String] = []
    var errors: [ParseError] = []
}

/// Parses `bytes` cut into chunks by `cuts` (chunk lengths, cycled).
func parse(_ bytes: ByteBuffer, cuts: [Int], configuration: StreamingParser.Configuration = .init(),
           keepSampleBytes: Bool = true) -> ParseResult {
    var parser = StreamingParser(configuration: configuration)
    var result = ParseResult()
    var input = bytes
    var cut = 0
    while input.readableBytes > 0 {
        let length = min(cuts[cut % cuts.count], input.readableBytes)
        cut += 1
        parser.append(input.readSlice(length: length)!)
        while true {
            do {
                guard let item = try parser.next() else { break }
                switch item {
                case .initSegment(let segment): result.initSegments.append(segment.tracks)
                case .fragment(let fragment):
                    result.fragmentSequence.append(fragment.sequenceNumber)
                    result.samples += fragment.samples
                    if keepSampleBytes {
                        result.sampleBytes += fragment.samples.map { Array(fragment.data(of: $0).readableBytesView) }
                    }
                case .skipped(let type, let size, _): result.skipped.append("\(type):\(size)")
                }
            } catch {
                result.errors.append(error)
            }
        }
    }
    do { try parser.finish() } catch { result.errors.append(error) }
    return result
}

/// ffprobe's packets of one file: the oracle.
struct ProbePacket: Equatable {
    var stream: Int
    var pts: Int64
    var dts: Int64
    var duration: Int64
    var size: Int
    var keyframe: Bool
}

func ffprobePackets(_ name: String) async throws -> [ProbePacket] {
    let probe = try await runTool("/usr/bin/env", ["ffprobe", "-v", "error", "-show_packets", "-of", "json",
                                                   fixturesDirectory.appendingPathComponent(name).path])
    guard probe.status == 0,
          let json = try JSONSerialization.jsonObject(with: Data(probe.stdout.utf8)) as? [String: Any],
          let packets = json["packets"] as? [[String: Any]] else {
        throw ProbeError(message: "ffprobe failed on \(name) (is ffmpeg installed?): \(probe.stderr)")
    }
    return packets.map { p in
        ProbePacket(
            stream: p["stream_index"] as? Int ?? -1,
            pts: Int64(p["pts"] as? Int ?? Int.min), dts: Int64(p["dts"] as? Int ?? Int.min),
            duration: Int64(p["duration"] as? Int ?? -1), size: Int(p["size"] as? String ?? "") ?? -1,
            keyframe: (p["flags"] as? String ?? "").hasPrefix("K"))
    }
}

struct ProbeError: Error { var message: String }
