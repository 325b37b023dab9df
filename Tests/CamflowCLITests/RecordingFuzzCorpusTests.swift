import Foundation
import Testing

/// The clip cutter's and the recordings index's fuzz corpora (Fuzz/corpus)
/// and the inputs that once broke them (Fuzz/regressions) replayed through
/// their targets: a crash found once is a test forever.
@Suite struct RecordingFuzzCorpusTests {
    @Test(arguments: ["clip", "index"]) func fuzzCorpus_replaysWithoutACrash(_ target: String) async throws {
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
