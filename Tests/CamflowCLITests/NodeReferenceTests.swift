import Camflow
@testable import CamflowCLI
import Foundation
import Testing

@Suite struct NodeReferenceTests {
    @Test func docsNodesMarkdown_isCurrent() throws {
        let committed = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/nodes.md"), encoding: .utf8)
        let generated = NodeReference.markdown(NodeRegistry(plugins: BuiltinPlugins.all))
        #expect(committed == generated, "docs/nodes.md is stale: run 'make docs'")
    }

    @Test func everyBuiltinTypeDocumentsEveryOption() {
        let registry = NodeRegistry(plugins: BuiltinPlugins.all)
        #expect(registry.conflicts.isEmpty)
        for type in registry.types {
            #expect(!type.summary.isEmpty, "\(type.name) has no summary")
            for option in type.options {
                #expect(!option.summary.isEmpty, "\(type.name).\(option.name) has no description")
            }
        }
    }

    @Test func everyPipelineInTheRepository_validates() throws {
        let dir = repositoryRoot.appendingPathComponent("pipelines")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }
        #expect(!files.isEmpty)
        let registry = NodeRegistry(plugins: BuiltinPlugins.all)
        for file in files {
            let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            do {
                // Variables a user must set; the rest have defaults in the files.
                let environment = ["INSTAR_URL": "ws://192.0.2.10/ws", "INSTAR_PASSWORD": "secret"]
                let spec = try PipelineLoader(environment: environment).load(text, file: "pipelines/\(file)")
                _ = try GraphValidator(registry: registry).validate(spec)
            } catch {
                Issue.record("pipelines/\(file) does not validate:\n\(error)")
            }
        }
    }
}
