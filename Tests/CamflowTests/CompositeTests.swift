import Camflow
import Foundation
import Testing

/// `type: graph` nodes: a YAML graph reused as one node.
@Suite struct CompositeTests {
    static let files: [String: String] = [
        "dir/sub.yaml": """
            input: first
            output: last
            nodes:
              first: { type: queue, max-packets: "${size}" }
              last: { type: queue, inputs: [first] }
            """,
        "dir/broken.yaml": """
            output: last
            nodes:
              last: { type: qeue }
            """,
        "dir/loop.yaml": """
            output: again
            nodes:
              again: { type: graph, file: loop.yaml }
            """,
        "dir/dotloop.yaml": """
            output: again
            nodes:
              again: { type: graph, file: ./dotloop.yaml }
            """,
    ]

    let registry = TestNodes.registry(TestNodes.source(name: "camera", count: 1, kind: .bytes))

    func load(_ text: String) throws(ConfigErrors) -> PipelineSpec {
        try PipelineLoader(environment: [:], readFile: { path in
            guard let text = Self.files[(path as NSString).standardizingPath] else { throw ConfigError("no such file", at: nil) }
            return text
        }).load(text, file: "dir/top.yaml")
    }

    @Test func compositeNodes_expandWithParams_andWireInputsAndOutputs() throws {
        let spec = try load("""
            nodes:
              cam: { type: camera }
              a: { type: graph, file: sub.yaml, inputs: [cam], params: { size: "7" } }
              b: { type: graph, file: sub.yaml, inputs: [a], params: { size: "9" } }
              log: { type: log, inputs: [b] }
            """)
        #expect(spec.nodes.map(\.id) == ["cam", "a.first", "a.last", "b.first", "b.last", "log"])
        let byID = Dictionary(uniqueKeysWithValues: spec.nodes.map { ($0.id, $0) })
        #expect(byID["a.first"]?.inputs == ["cam"])
        #expect(byID["a.last"]?.inputs == ["a.first"])
        #expect(byID["b.first"]?.inputs == ["a.last"], "a composite's consumers read its output node")
        #expect(byID["log"]?.inputs == ["b.last"])
        #expect(byID["a.first"]?.options["max-packets"]?.scalarText == "7")
        #expect(byID["b.first"]?.options["max-packets"]?.scalarText == "9")
        #expect(byID["a.first"]?.groups == ["a"])
        _ = try GraphValidator(registry: registry).validate(spec)
    }

    @Test func errorsInAnIncludedGraph_nameBothFiles() {
        do {
            let spec = try load("""
                nodes:
                  cam: { type: camera }
                  x: { type: graph, file: broken.yaml }
                  log: { type: log, inputs: [x] }
                """)
            _ = try GraphValidator(registry: registry).validate(spec)
            Issue.record("expected an error")
        } catch {
            #expect(error.description == """
                dir/broken.yaml:3:17: error: unknown node type 'qeue' (node 'x.last'); did you mean 'queue'?
                 3 |   last: { type: qeue }
                   |                 ^
                note: in the graph included at dir/top.yaml:3:27 (node 'x')
                note: run 'camflow nodes' to list the types
                """)
        }
    }

    @Test func aGraphThatIncludesItself_isRefused() {
        #expect(throws: ConfigErrors.self) {
            try load("""
                nodes:
                  x: { type: graph, file: loop.yaml }
                  log: { type: log, inputs: [x] }
                """)
        }
        do {
            _ = try load("nodes:\n  x: { type: graph, file: loop.yaml }\n")
        } catch {
            #expect(error.description.contains("includes 'dir/loop.yaml', which includes itself"))
        }
    }

    @Test func aGraphThatIncludesItselfThroughADotPath_isRefusedAtOnce() {
        do {
            _ = try load("nodes:\n  x: { type: graph, file: dotloop.yaml }\n")
            Issue.record("a graph that includes itself must be refused")
        } catch {
            #expect(error.description.contains("which includes itself"), "\(error)")
            #expect(!error.description.contains("more than 256 graphs"), "refused on the first loop, not after 256 loads")
        }
    }

    @Test func aParamThatIsNotASingleValue_isAnError() {
        do {
            _ = try load("nodes:\n  x: { type: graph, file: sub.yaml, params: { size: [1, 2] } }\n")
            Issue.record("a list as a param value must be refused")
        } catch {
            #expect(error.description.contains("'params.size' of composite node 'x' must be a single value, not a list"), "\(error)")
        }
    }
}
