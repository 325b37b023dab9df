@testable import Camflow
import Testing

/// What a hostile review tried on pipeline files beyond their size: values
/// that look like YAML, long names, numbers at the edges.
@Suite struct ConfigAttackTests {
    @Test func anInterpolatedValueHoldingYAML_staysOneValue_andIsPrintedEscaped() throws {
        let environment = ["V": "x\"\n  evil: { type: queue }\n# \u{1B}[2J"]
        let spec = try PipelineLoader(environment: environment).load("""
            nodes:
              a: { type: queue, note: "${V}" }
            """, file: "p.yaml")
        #expect(spec.nodes.map(\.id) == ["a"] && spec.nodes[0].options["note"]?.scalarText == environment["V"])
        // In an error the value can neither start a line nor drive the terminal.
        var printed = ""
        do {
            _ = try GraphValidator(registry: NodeRegistry(plugins: [])).validate(try PipelineLoader(environment: environment).load("""
                nodes:
                  a: { type: queue, max-bytes: "${V}" }
                """, file: "p.yaml"))
        } catch {
            printed = error.description
        }
        #expect(printed.contains("found 'x\"\\n  evil: { type: queue }\\n# \\u{1B}[2J'"), "\(printed)")
        #expect(!printed.contains("\u{1B}") && !printed.contains("\n  evil"), "\(printed)")
    }

    /// Seconds of work in a debug build: on a thread of its own, not on the
    /// cooperative pool that the tests running beside it share.
    @Test func thousandsOfLongUnknownNames_costNoQuadraticTime() async throws {
        try await BlockingIOThread.run(name: "test long unknown names") { try longUnknownNames() }
    }

    private func longUnknownNames() throws {
        // Each unknown option was compared, character by character, with every option name: 2,000 keys
        // of 1,000 characters made some 200 million steps of "did you mean".
        let nodes = (0..<200).map { node in
            "  n\(node): { type: queue, " + (0..<10).map { "\(String(repeating: "o", count: 1_000))\($0): 1" }.joined(separator: ", ") + " }"
        }
        let text = "nodes:\n" + nodes.joined(separator: "\n") + "\n"
        let spec = try PipelineLoader(environment: [:]).load(text, file: "p.yaml")
        let start = ContinuousClock.now
        var count = 0
        do {
            _ = try GraphValidator(registry: NodeRegistry(plugins: [])).validate(spec)
        } catch {
            count = error.count
        }
        #expect(count >= 2_000)
        #expect(ContinuousClock.now - start < .seconds(2), "\(ContinuousClock.now - start)")
    }

    @Test func aZeroBackoffWithUnlimitedRestarts_computesItsDelayAtOnce() {
        let policy = RestartPolicy(mode: .onFailure, maxRestarts: nil, backoff: .zero)
        let start = ContinuousClock.now
        #expect(policy.delay(beforeAttempt: 200_000_000) == .zero)
        #expect(RestartPolicy(mode: .onFailure, backoff: .nanoseconds(1), maxBackoff: .seconds(3_000_000_000))
            .delay(beforeAttempt: .max) == .seconds(3_000_000_000))
        #expect(ContinuousClock.now - start < .milliseconds(200), "\(ContinuousClock.now - start)")
    }

    /// Kahn's queue lost its head with `removeFirst`, moving every waiting node:
    /// 32 included graphs of 20,000 nodes took 79 s to validate. The cycle walk
    /// searched its path at every step the same way.
    @Test func hugeGraphs_areOrderedInLinearTime() async {
        // Seconds of work in a debug build: on a thread of its own, not on the pool the tests share.
        await BlockingIOThread.run(name: "test huge graphs") { hugeGraphs() }
    }

    private func hugeGraphs() {
        let independent = [[Int]](repeating: [], count: 200_000)
        let start = ContinuousClock.now
        guard case .success(let order) = GraphValidator.topologicalOrder(independent) else {
            Issue.record("independent nodes have no cycle")
            return
        }
        #expect(order == Array(0..<200_000))
        // One cycle through 100,000 nodes: each takes the one before it, the first takes the last.
        let ring = (0..<100_000).map { [$0 == 0 ? 99_999 : $0 - 1] }
        guard case .failure(let cycle) = GraphValidator.topologicalOrder(ring) else {
            Issue.record("a ring is a cycle")
            return
        }
        #expect(cycle.nodes.count == 100_000)
        #expect(ContinuousClock.now - start < .seconds(3), "\(ContinuousClock.now - start)")
    }
}
