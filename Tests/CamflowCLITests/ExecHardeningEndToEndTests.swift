import CamflowTesting
import Camflow
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The exec node with children that hoard, snoop and refuse to die
/// (Tests/Peers/exec_children.py), through the real binary.
@Suite struct ExecHardeningEndToEndTests {
    let children = repositoryRoot.appendingPathComponent("Tests/Peers/exec_children.py").path
    let clip = repositoryRoot.appendingPathComponent("Tests/Fixtures/h264-main-aac.mp4").path

    /// Processes whose command line holds `marker`.
    func processes(containing marker: String) async throws -> [String] {
        let result = try await runTool("/usr/bin/pgrep", ["-f", marker])
        return result.stdout.split(separator: "\n").map(String.init)
    }

    @Test func aChildThatNeverAcknowledges_slowsTheInput_insteadOfFillingMemory() async throws {
        let pipeline = try temporaryPipeline("""
            nodes:
              replay: { type: file-replay, path: \(clip), loop: true, chunk-size: 4KiB }
              child: { type: exec, inputs: [replay], command: [python3, \(children), echo-no-ack], max-unacked: 16 }
              sink: { type: null, inputs: [child] }
            """)
        let run = try CamflowProcess(["run", pipeline, "--for", "3s", "--shutdown-timeout", "1s"])
        _ = try await run.waitForExit(timeout: .seconds(60))
        let peak = run.stderr.split(separator: "\n").first { $0.hasPrefix("peak memory ") }
            .flatMap { Double($0.split(separator: " ")[2]) } ?? .infinity
        #expect(peak < 100, "peak memory \(peak) MiB\n\(run.stderr)")
        let out = summaryRow(run.stderr, node: "replay")?.packetsOut ?? .max
        #expect(out < 200, "the input waited for acknowledgements: \(out) packets went out")
    }

    @Test func theChild_getsAMinimalEnvironment() async throws {
        let pipeline = try temporaryPipeline("""
            nodes:
              replay: { type: file-replay, path: \(clip) }
              child: { type: exec, inputs: [replay], command: [python3, \(children), print-env], env: [MODE=test], inherit-env: [CAMFLOW_SHARED] }
              sink: { type: null, inputs: [child] }
            """)
        let result = try await camflow("run", pipeline, environment: [
            "CAMERA_PASSWORD": "hunter2", "WEB_PASSWORD": "s3cret", "CAMFLOW_SHARED": "yes",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("env MODE=test"))
        #expect(result.stderr.contains("env CAMFLOW_SHARED=yes"))
        #expect(result.stderr.contains("env PATH="))
        #expect(!result.stderr.contains("hunter2") && !result.stderr.contains("s3cret"), "\(result.stderr)")
    }

    @Test func aChildIgnoringSIGTERM_isKilled_withItsChildren() async throws {
        let tag = "1\(Int.random(in: 100_000...999_999)).5"
        let pipeline = try temporaryPipeline("""
            nodes:
              replay: { type: file-replay, path: \(clip), loop: true, rate: 64KiB/s }
              child: { type: exec, inputs: [replay], command: [python3, \(children), stubborn, "\(tag)"], stop-timeout: 500ms }
              sink: { type: null, inputs: [child] }
            """)
        let run = try CamflowProcess(["run", pipeline, "--shutdown-timeout", "2s"])
        try await run.waitForLine(inStderr: true) { $0.contains("stubborn child started") }
        #expect(try await processes(containing: "sleep \(tag)").count == 1)
        run.process.interrupt()
        _ = try await run.waitForExit(timeout: .seconds(30))
        try await waitUntil("the grandchild is gone", timeout: .seconds(10)) {
            (try? await processes(containing: "sleep \(tag)").isEmpty) == true
        }
    }

    @Test func aKilledCamflow_leavesNoOrphan() async throws {
        let tag = "2\(Int.random(in: 100_000...999_999)).5"
        let pipeline = try temporaryPipeline("""
            nodes:
              replay: { type: file-replay, path: \(clip), loop: true, rate: 64KiB/s }
              child: { type: exec, inputs: [replay], command: [python3, \(children), stubborn, "\(tag)"] }
              sink: { type: null, inputs: [child] }
            """)
        let run = try CamflowProcess(["run", pipeline])
        try await run.waitForLine(inStderr: true) { $0.contains("stubborn child started") }
        let child = try await processes(containing: "stubborn \(tag)")
        #expect(child.count == 1)
        kill(run.process.processIdentifier, SIGKILL)
        try await waitUntil("the child died with camflow", timeout: .seconds(10)) {
            (try? await processes(containing: "stubborn \(tag)").isEmpty) == true
        }
        // The kernel's death signal reaches the child only; its own child is the test's to clean up.
        _ = try? await runTool("/usr/bin/pkill", ["-f", "sleep \(tag)"])
    }
}
