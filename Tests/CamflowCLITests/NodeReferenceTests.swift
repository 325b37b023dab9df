import Camflow
import Foundation
import Testing

/// The node reference and the shipped pipelines, as the `camflow` binary
/// (the composition root, which lists the plugins) sees them.
@Suite struct NodeReferenceTests {
    @Test func docsNodesMarkdown_isCurrent() async throws {
        let committed = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/nodes.md"), encoding: .utf8)
        let result = try await camflow("nodes", "--markdown")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(committed == result.stdout, "docs/nodes.md is stale: run 'make docs'")
    }

    @Test func everyShippedTypeDocumentsEveryOption() async throws {
        let result = try await camflow("nodes", "--markdown")
        let sections = result.stdout.components(separatedBy: "\n## ").dropFirst()
        #expect(sections.count >= 15, "expected every node type of the shipped plugins")
        for section in sections {
            let name = section.prefix(while: { $0 != "\n" })
            let body = section.drop(while: { $0 != "\n" }).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(!body.isEmpty, "\(name) has no summary")
            #expect(!section.contains("|  |\n") && !section.hasSuffix("|  |"), "\(name) has an option without a description")
        }
    }

    @Test func everyPipelineInTheRepository_validates() async throws {
        let dir = repositoryRoot.appendingPathComponent("pipelines")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }
        #expect(!files.isEmpty)
        // Variables a user must set; the rest have defaults in the files.
        let environment = ["INSTAR_URL": "ws://192.0.2.10/ws", "INSTAR_PASSWORD": "secret"]
        for file in files {
            let result = try await camflow("validate", "pipelines/\(file)", environment: environment)
            #expect(result.status == 0, "pipelines/\(file) does not validate:\n\(result.stderr)")
        }
    }
}
