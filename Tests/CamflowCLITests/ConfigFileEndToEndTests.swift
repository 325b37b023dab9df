import Foundation
import Testing

/// Pipeline files that are too large or too wrong, through the binary:
/// refused at once, with bounded output.
@Suite struct ConfigFileEndToEndTests {
    @Test func aGigabyteFile_isRefusedAtOnce() async throws {
        let path = try temporaryPipeline("", name: "huge.yaml")
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.truncate(atOffset: 1 << 30)
        try handle.close()
        let start = ContinuousClock.now
        let result = try await camflow("validate", path)
        #expect(ContinuousClock.now - start < .seconds(10))
        #expect(result.status == 2)
        #expect(result.stderr.contains("is 1073741824 bytes; pipeline files are at most 4 MiB"), "\(result.stderr)")
        #expect(result.stderr.utf8.count < 1_000)
    }

    @Test func twentyThousandBadLines_printTwentyErrors() async throws {
        let text = "nodes: {}\n" + (0..<20_000).map { "key\($0): \(String(repeating: "v", count: 100))" }.joined(separator: "\n") + "\n"
        let path = try temporaryPipeline(text, name: "bad.yaml")
        let result = try await camflow("validate", path)
        #expect(result.status == 2)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count < 100, "\(lines.count) lines")
        #expect(result.stderr.contains("… and 19980 more errors") && result.stderr.contains("bad.yaml: 20000 errors"),
                "\(result.stderr.suffix(300))")
    }

    @Test func hints_nameTheProgramAsItWasRun() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-name-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let renamed = dir.appendingPathComponent("my-camflow").path
        try FileManager.default.createSymbolicLink(atPath: renamed, withDestinationPath: camflowBinary)
        let path = try temporaryPipeline("nodes:\n  a: { type: queue, colour: red }\n")
        let process = try CamflowProcess(["validate", path], executable: renamed)
        #expect(try await process.waitForExit() == 2)
        #expect(process.stderr.contains("see 'my-camflow nodes queue'"), "\(process.stderr)")
        #expect(!process.stderr.contains("'camflow "), "\(process.stderr)")
    }
}

/// What `camflow nodes` prints of every node type the binary composes.
@Suite struct NodeDocsTests {
    @Test func everyTypesSummaryAndDetails_areCleanText() async throws {
        let list = try await camflow("nodes")
        #expect(list.status == 0)
        let rows = list.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropFirst().prefix { !$0.isEmpty }
        let names = rows.map { String($0.prefix { $0 != " " }) }
        #expect(names.count >= 20 && names.contains("pipeline-events") && names.contains("web"), "\(names)")
        for row in rows {
            let summary = row.split(separator: " ", omittingEmptySubsequences: true).dropFirst(2).joined(separator: " ")
            #expect(!summary.isEmpty, "no summary: \(row)")
        }
        let markdown = try await camflow("nodes", "--markdown")
        let sections = markdown.stdout.components(separatedBy: "\n## ").dropFirst()
        #expect(Set(sections.map { String($0.prefix { $0 != "\n" }) }) == Set(names))
        for section in sections {
            let name = section.prefix { $0 != "\n" }
            // The summary and details: from the heading to the kinds it takes.
            let prose = section.components(separatedBy: "\n- accepts:").first ?? ""
            let body = prose.dropFirst(name.count).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(!body.isEmpty, "\(name): no summary")
            for line in body.split(separator: "\n") {
                #expect(!line.hasSuffix("\\"), "\(name): a line ends in a backslash: \(line)")
                for escape in ["\\n", "\\t", "\\\"", "\\u{", "\\\\", "\\(", "\u{1B}"] {
                    #expect(!line.contains(escape), "\(name): raw escape \(escape.debugDescription) in: \(line)")
                }
                #expect(!line.unicodeScalars.contains { $0.properties.generalCategory == .control }, "\(name): \(line)")
            }
        }
    }
}
