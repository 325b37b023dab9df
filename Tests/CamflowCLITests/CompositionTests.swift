import Foundation
import Testing

/// The executable is the composition root: a binary has the node types and
/// the system libraries of the plugins it names, and no others.
@Suite struct CompositionTests {
    /// The binary docs/custom-nodes.md builds, next to `camflow`.
    let tutorialBinary = URL(fileURLWithPath: camflowBinary).deletingLastPathComponent()
        .appendingPathComponent("camflow-tutorial").path

    @Test func tutorialBinary_hasOnlyTheNodeTypesOfThePluginsItNames() async throws {
        let process = try CamflowProcess(["nodes"], executable: tutorialBinary)
        #expect(try await process.waitForExit() == 0, "\(process.stderr)")
        let types = Set(process.stdout.split(separator: "\n").dropFirst().compactMap { $0.split(separator: " ").first.map(String.init) })
        for named in ["file-replay", "file-record", "mp4-parse", "keyframes", "stats", "rate-limit", "queue", "log", "null"] {
            #expect(types.contains(named), "camflow-tutorial lacks \(named)")
        }
        for absent in ["zmq-publish", "zmq-subscribe", "instar-camera", "web", "exec"] {
            #expect(!types.contains(absent), "camflow-tutorial has \(absent), from a plugin it does not name")
        }
        let full = try await camflow("nodes")
        for type in ["zmq-publish", "instar-camera", "web", "exec", "rate-limit"] {
            #expect(full.stdout.contains("\n\(type) "), "camflow lacks \(type)")
        }
    }

    @Test func tutorialBinary_linksNoLibraryOfAPluginItLeavesOut() throws {
        let tutorial = try sharedLibraries(of: tutorialBinary)
        #expect(tutorial.contains("libc.so"), "ldd printed no libraries: \(tutorial)")
        #expect(!tutorial.contains("libzmq"), "camflow-tutorial links libzmq:\n\(tutorial)")
        let full = try sharedLibraries(of: camflowBinary)
        #expect(full.contains("libzmq"), "camflow, which ships zmq-publish, should link libzmq")
    }

    /// What `ldd` lists for `binary`.
    func sharedLibraries(of binary: String) throws -> String {
        let ldd = try runTool("/usr/bin/ldd", [binary])
        #expect(ldd.status == 0, "ldd \(binary) failed: \(ldd.stderr)")
        return ldd.stdout
    }

    @Test func tutorialBinary_runsAPipelineOfItsNodes() async throws {
        let clip = repositoryRoot.appendingPathComponent("Tests/Fixtures/h264-main-aac.mp4").path
        let pipeline = try temporaryPipeline("""
            name: tutorial
            nodes:
              replay: { type: file-replay, path: \(clip) }
              parse: { type: mp4-parse, inputs: [replay], frames: true }
              limit: { type: rate-limit, inputs: [parse], fps: 1 }
              out: { type: log, inputs: [limit], format: json }
            """)
        let process = try CamflowProcess(["run", pipeline], executable: tutorialBinary)
        #expect(try await process.waitForExit() == 0, "\(process.stderr)")
        #expect(process.stdout.contains("\"kind\":\"frame\""), "no frame passed rate-limit")
    }
}
