import CamflowTesting
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

    @Test func tutorialBinary_linksNoCodeOfAPluginItLeavesOut() async throws {
        // Swift symbols carry their module's name: the plugin's code is in the binary or not.
        let modules = ["12ZeroMQPlugin", "9WebPlugin", "12InstarPlugin", "10ExecPlugin", "15InstarSimulator", "12CamflowBench", "10MQTTPlugin", "10MQTTClient"]
        let tutorial = try await modulesWithSymbols(in: tutorialBinary, among: modules + ["15RateLimitPlugin"])
        let full = try await modulesWithSymbols(in: camflowBinary, among: modules)
        for module in modules {
            #expect(!tutorial.contains(module), "camflow-tutorial holds code of \(module), which it does not name")
            #expect(full.contains(module), "camflow should hold code of \(module)")
        }
        #expect(tutorial.contains("15RateLimitPlugin"), "camflow-tutorial lacks the plugin it names")
    }

    @Test func noBinaryLoadsLibzmqLibmosquittoOrLibcurlAtStart() async throws {
        // libzmq (and its ~40 libraries) and libmosquitto are loaded when a node first
        // needs it; nothing needs FoundationNetworking's libcurl at all.
        for binary in [camflowBinary, tutorialBinary] {
            let ldd = try await runTool("/usr/bin/ldd", [binary])
            #expect(ldd.status == 0 && ldd.stdout.contains("libc.so"), "ldd \(binary): \(ldd.stderr)")
            #expect(!ldd.stdout.contains("libzmq") && !ldd.stdout.contains("libmosquitto") && !ldd.stdout.contains("libcurl"), "\(binary) links:\n\(ldd.stdout)")
        }
    }

    /// Which of `modules` (mangled module names) occur in `binary`'s symbols;
    /// filtered in the shell, so the test does not hold nm's whole output.
    func modulesWithSymbols(in binary: String, among modules: [String]) async throws -> Set<String> {
        let pattern = modules.joined(separator: "|")
        let nm = try await runTool("/bin/sh", ["-c", "nm \"$0\" | grep -oE '\(pattern)' | sort -u", binary])
        #expect(nm.status == 0, "nm \(binary) failed: \(nm.stderr)")
        return Set(nm.stdout.split(separator: "\n").map(String.init))
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
