import CamflowTesting
import Camflow
import Foundation
import Testing

/// Every crafted stream in Tests/Fixtures/hostile (written by
/// scripts/make-hostile.py) goes through the real binary, replayed in odd
/// chunks through mp4-parse, keyframes and stats: each must end in an
/// orderly exit, report what cases.json expects, still deliver the good
/// fragment after the hostile bytes, and stay within a memory bound.
@Suite struct HostileMediaEndToEndTests {
    struct Case: Decodable, Sendable, CustomTestStringConvertible {
        var file: String
        var what: String
        var expect: [String]
        var fragments: Int
        var testDescription: String { file }
    }

    static let cases: [Case] = {
        let url = repositoryFile("Tests/Fixtures/hostile/cases.json")
        guard let data = try? Data(contentsOf: url), let cases = try? JSONDecoder().decode([Case].self, from: data) else {
            return []
        }
        return cases
    }()

    /// Peak resident memory allowed: the debug binary replaying a small file
    /// uses about 30 MiB; a hostile size that was trusted would use far more.
    static let memoryBoundMiB = 64.0

    @Test func theCorpusIsThere() {
        #expect(Self.cases.count >= 15, "Tests/Fixtures/hostile/cases.json lists the hostile cases")
    }

    @Test(arguments: cases) func hostileStream_isReported_thenParsingGoesOn(_ hostile: Case) async throws {
        let pipeline = try temporaryPipeline("""
            nodes:
              replay: { type: file-replay, path: "\(repositoryRoot.path)/Tests/Fixtures/hostile/\(hostile.file)", chunk-size: 7919 }
              parse: { type: mp4-parse, inputs: [replay], frames: true, max-box-size: 4MiB }
              keyframes: { type: keyframes, inputs: [parse] }
              stats: { type: stats, inputs: [keyframes], interval: 1s }
              log: { type: log, inputs: [keyframes, stats] }
            """)
        let process = try CamflowProcess(["run", pipeline])
        let status = try await process.waitForExit(timeout: .seconds(60))
        let stdout = process.stdout, stderr = process.stderr
        #expect(process.process.terminationReason == .exit, "\(hostile.what): killed by a signal\n\(stderr)")
        #expect(status == 0, "\(hostile.what)\n\(stderr)")
        let lines = stdout.split(separator: "\n")
        let errors = lines.filter { $0.contains(" parse-error node=parse ") }
        for code in hostile.expect {
            #expect(errors.contains { $0.contains("code=\(code) ") }, "\(hostile.what): no \(code) reported in\n\(errors.joined(separator: "\n"))")
        }
        if hostile.expect.isEmpty { #expect(errors.isEmpty, "\(hostile.what): \(errors)") }
        let fragments = lines.filter { $0.hasPrefix("replay fragment ") }.count
        #expect(fragments == hostile.fragments, "\(hostile.what): \(fragments) fragments delivered")
        let measures = ["interval-seconds", "gop-seconds", "gop-frames", "fps", "bitrate-bps", "fragment-seconds"]
        let negative = lines.filter { line in measures.contains { line.contains(" \($0)=-") } }
        #expect(negative.isEmpty, "\(hostile.what): negative measures \(negative)")
        let peak = stderr.split(separator: "\n").first { $0.hasPrefix("peak memory ") }
            .flatMap { Double($0.split(separator: " ")[2]) }
        #expect(peak != nil, "the summary says the peak memory:\n\(stderr)")
        #expect((peak ?? .infinity) <= Self.memoryBoundMiB, "\(hostile.what): peak memory \(peak ?? -1) MiB")
    }

    /// Every input the fuzzers kept (Fuzz/corpus) and every input that once
    /// broke something (Fuzz/regressions: what a fuzzer found, the hostile
    /// cases) goes through the targets again: a crash found once is a test forever.
    /// (mp4: the MP4 parser; header: the ZeroMQ packet header; clip: the clip cutter
    /// over a recording's bytes; index: the recordings index; rtp: the RTP header and
    /// depacketizers; rtsp: RTSP messages, SDP, Transport, Digest and the session machines.)
    @Test(arguments: ["mp4", "header", "clip", "index", "rtp", "rtsp", "stun", "rtcp", "whep"]) func fuzzCorpus_replaysWithoutACrash(_ target: String) async throws {
        let binary = URL(fileURLWithPath: camflowBinary).deletingLastPathComponent().appendingPathComponent("CamflowFuzz")
        var count = 0
        var folders: [String] = []
        for folder in ["Fuzz/corpus/\(target)", "Fuzz/regressions/\(target)"] {
            let path = repositoryRoot.appendingPathComponent(folder).path
            count += try FileManager.default.contentsOfDirectory(atPath: path).count
            folders.append(path)
        }
        #expect(count >= 5, "a checked-in corpus for \(target)")
        let process = try CamflowProcess([target] + folders, executable: binary.path)
        let status = try await process.waitForExit(timeout: .seconds(120))
        #expect(process.process.terminationReason == .exit && status == 0, "\(process.stderr)")
        #expect(process.stdout.contains("replayed \(count) inputs through \(target)"), "\(process.stdout)")
    }
}
