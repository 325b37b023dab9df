import Foundation
import Testing

/// Pipeline files that try to make `camflow validate` or `run` explode are
/// refused at once, with the file, line and column.
@Suite struct HostileConfigEndToEndTests {
    /// The classic "billion laughs": nine levels of nine aliases, about 700 bytes.
    static let aliasBomb: String = {
        var lines = ["name: bomb", "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
        for level in 1...9 {
            let previous = Array(repeating: "*a\(level - 1)", count: 9).joined(separator: ", ")
            lines.append("a\(level): &a\(level) [\(previous)]")
        }
        lines += ["nodes:", "  src: { type: file-replay, path: clip.mp4, stream: *a9 }", "  sink: { type: null, inputs: [src] }"]
        return lines.joined(separator: "\n") + "\n"
    }()

    @Test func anAliasBomb_isRefusedAtItsFirstAlias() async throws {
        #expect(Self.aliasBomb.utf8.count < 1024)
        let path = try temporaryPipeline(Self.aliasBomb, name: "bomb.yaml")
        let process = try CamflowProcess(["validate", path])
        let status = try await process.waitForExit(timeout: .seconds(20))
        #expect(status == 2, "\(process.stderr)")
        #expect(process.stderr.contains("bomb.yaml:3:10: error: YAML aliases (*a0) are not supported in pipeline files"),
                "\(process.stderr)")
    }

    @Test(arguments: [200, 100_000]) func deepNesting_isRefused_beforeYamsRecurses(_ depth: Int) async throws {
        let text = "name: deep\nnodes: " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "\n"
        let path = try temporaryPipeline(text, name: "deep.yaml")
        let result = try await camflow("validate", path)
        #expect(result.status == 2)
        // camflow's own limit, or libyaml's (1,000) which its scanner meets first on a deeper file.
        let expected = depth < 1000 ? "deep.yaml:2:71: error: the file nests mappings and lists more than 64 deep"
            : "deep.yaml:2:9: error: YAML syntax: Maximum nesting level reached"
        #expect(result.stderr.contains(expected), "\(result.stderr.prefix(500))")
    }

    @Test func graphsThatIncludeEachOtherManyTimes_areBounded() async throws {
        // Each level includes the next one eight times: 8^5 loads without a bound.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-includes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for level in 0..<5 {
            let nodes = (0..<8).map { "  g\($0): { type: graph, file: level\(level + 1).yaml }" }.joined(separator: "\n")
            try "input: g0\noutput: g7\nnodes:\n\(nodes)\n".write(to: dir.appendingPathComponent("level\(level).yaml"),
                                                                 atomically: true, encoding: .utf8)
        }
        try "input: n\noutput: n\nnodes:\n  n: { type: queue }\n".write(to: dir.appendingPathComponent("level5.yaml"),
                                                                       atomically: true, encoding: .utf8)
        let top = dir.appendingPathComponent("top.yaml")
        try "nodes:\n  src: { type: file-replay, path: x.mp4 }\n  g: { type: graph, file: level0.yaml, inputs: [src] }\n  sink: { type: null, inputs: [g] }\n"
            .write(to: top, atomically: true, encoding: .utf8)
        let process = try CamflowProcess(["validate", top.path])
        let status = try await process.waitForExit(timeout: .seconds(30))
        #expect(status == 2)
        #expect(process.stderr.contains("the pipeline includes more than 256 graphs in all"), "\(process.stderr.prefix(800))")
    }
}
