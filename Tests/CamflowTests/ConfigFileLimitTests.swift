import Camflow
import Foundation
import Testing

/// Pipeline files as untrusted input: bounded in size, in what errors quote
/// and how many they print; links out of the pipeline's folder never quoted.
@Suite struct ConfigFileLimitTests {
    private func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-limits-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    private func errors(_ text: String, file: String = "p.yaml") -> ConfigErrors? {
        do {
            _ = try PipelineLoader(environment: [:]).load(text, file: file)
            return nil
        } catch {
            return error
        }
    }

    @Test func aHugeFile_isRefusedBeforeItIsRead() throws {
        let path = try scratch().appendingPathComponent("huge.yaml").path
        // Sparse: a gigabyte that costs no disk, and would cost 2 GB of memory to read.
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.truncate(atOffset: 1 << 30)
        try handle.close()
        let start = ContinuousClock.now
        #expect(throws: ConfigError.self) { try PipelineFileReader(pipelineFile: path).read(path) }
        do {
            _ = try PipelineFileReader(pipelineFile: path).read(path)
        } catch {
            #expect(error.description.contains("is 1073741824 bytes; pipeline files are at most 4 MiB"), "\(error)")
        }
        #expect(ContinuousClock.now - start < .seconds(1))
    }

    @Test func aPipeOrADirectory_isRefused_withoutWaiting() throws {
        let dir = try scratch()
        let fifo = dir.appendingPathComponent("fifo.yaml").path
        #expect(mkfifo(fifo, 0o600) == 0)
        for path in [fifo, dir.path, "/dev/zero"] {
            do {
                _ = try PipelineFileReader(pipelineFile: path).read(path)
                Issue.record("\(path) was read")
            } catch {
                #expect(error.description.contains("is not a regular file"), "\(error)")
            }
        }
    }

    @Test func nulBytesAndInvalidUTF8_sayWhere() throws {
        #expect(throws: ConfigError.self) { try PipelineFileReader.checkedText(Array("nodes:\n  a: x\u{0}y\n".utf8), path: "p.yaml") }
        do {
            _ = try PipelineFileReader.checkedText(Array("nodes:\n  a: x\u{0}y\n".utf8), path: "p.yaml")
        } catch {
            #expect(error.description == "error: p.yaml:2:7: a NUL byte: pipeline files are UTF-8 text")
        }
        do {
            _ = try PipelineFileReader.checkedText(Array("name: é\nnodes: ".utf8) + [0xC3, 0x28], path: "p.yaml")
        } catch {
            #expect(error.description == "error: p.yaml:2:8: not UTF-8 text (byte 16): pipeline files are UTF-8 text")
        }
    }

    @Test func aLongLine_isQuotedAsAnExcerptAroundTheColumn() throws {
        let key = String(repeating: "x", count: 20_000)
        let problem = try #require(errors("nodes: {}\n\(key): 1\n"))
        let printed = problem.description
        let quoted = try #require(printed.split(separator: "\n").first { $0.hasPrefix(" 2 |") })
        // libyaml stops at the end of the over-long key: the excerpt ends there, cut before.
        #expect(quoted.count <= ConfigError.quoteWidth + 10 && quoted.hasPrefix(" 2 | …x") && quoted.hasSuffix("x: 1"),
                "\(quoted.count) characters quoted: \(quoted.prefix(20))")
        #expect(printed.count < 1_500, "\(printed.count) characters printed for one error")
        // An error far into the line: cut on both sides, the caret under its character.
        let location = SourceLocation(file: "p.yaml", line: 1, column: 15_001,
                                      lineText: String(repeating: "a", count: 15_000) + "B" + String(repeating: "c", count: 5_000))
        let lines = ConfigError("here", at: location).description.split(separator: "\n")
        #expect(lines[1].hasPrefix(" 1 | …a") && lines[1].hasSuffix("c…"), "\(lines[1])")
        let caret = try #require(lines[2].firstIndex(of: "^"))
        let column = lines[2].distance(from: lines[2].startIndex, to: caret)
        let quotedCharacter = lines[1].unicodeScalars[lines[1].unicodeScalars.index(lines[1].unicodeScalars.startIndex, offsetBy: column)]
        #expect(quotedCharacter == "B")
    }

    @Test func aLongValueCitedInAMessage_isCut() throws {
        let value = String(repeating: "z", count: 100_000)
        var printed = ""
        do {
            _ = try GraphValidator(registry: NodeRegistry(plugins: [])).validate(
                try PipelineLoader(environment: [:]).load("nodes:\n  a: { type: queue, max-bytes: \"\(value)\" }\n", file: "p.yaml"))
        } catch {
            printed = error.description
        }
        #expect(printed.contains("found 'zzz") && printed.contains("… ("), "\(printed.prefix(300))")
        #expect(printed.split(separator: "\n").allSatisfy { $0.count < ConfigError.messageLimit + 200 }, "\(printed.count) characters")
    }

    @Test func controlCharacters_neverReachTheTerminal() {
        let location = SourceLocation(file: "p.yaml", line: 1, column: 3, lineText: "a \u{1B}[2J\u{202E}b")
        let text = ConfigError("unknown key 'x\u{1B}[31m\ny'", at: location).description
        #expect(!text.contains("\u{1B}") && !text.contains("\u{202E}"), "\(text)")
        #expect(text.hasPrefix("p.yaml:1:3: error: unknown key 'x\\u{1B}[31m\\ny'\n"), "\(text)")
    }

    @Test func manyErrors_printTwentyAndCountTheRest() throws {
        let text = "nodes: {}\n" + (0..<20_000).map { "key\($0): 1" }.joined(separator: "\n") + "\n"
        let problem = try #require(errors(text))
        #expect(problem.count == 20_000)
        let printed = problem.description
        #expect(printed.split(separator: "\n").count < 100, "\(printed.split(separator: "\n").count) lines")
        #expect(printed.hasSuffix("… and 19980 more errors"), "\(printed.suffix(200))")
    }

    @Test func aLinkOutOfThePipelinesFolder_isNeverQuoted() throws {
        let outside = try scratch(), folder = try scratch()
        let secret = outside.appendingPathComponent("secret.yaml")
        try "root-password hunter2 is here\nnodes: [\n".write(to: secret, atomically: true, encoding: .utf8)
        let link = folder.appendingPathComponent("pipeline.yaml").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: secret.path)
        let source = try PipelineFileReader(pipelineFile: link).read(link)
        #expect(source.notQuoted?.contains("outside the pipeline's folder") == true, "\(source.notQuoted ?? "quoted")")
        var printed = ""
        do { _ = try PipelineLoader(environment: [:]).load(source, file: link) } catch { printed = error.description }
        #expect(printed.contains("pipeline.yaml:") && printed.contains("line not quoted"), "\(printed)")
        #expect(!printed.contains("hunter2") && !printed.contains("nodes: ["), "\(printed)")

        // A link inside the folder is a file of the pipeline: quoted.
        let inside = folder.appendingPathComponent("real.yaml")
        try "nodes: [\n".write(to: inside, atomically: true, encoding: .utf8)
        let insideLink = folder.appendingPathComponent("other.yaml").path
        try FileManager.default.createSymbolicLink(atPath: insideLink, withDestinationPath: inside.path)
        #expect(try PipelineFileReader(pipelineFile: insideLink).read(insideLink).notQuoted == nil)
    }

    @Test func anIncludeOutOfTheFolder_isLoadedButNotQuoted() throws {
        let outside = try scratch(), folder = try scratch()
        try "output: n\nnodes:\n  n: { type: queue }\nhunter2-secret: 1\n"
            .write(to: outside.appendingPathComponent("shared.yaml"), atomically: true, encoding: .utf8)
        let top = folder.appendingPathComponent("top.yaml").path
        try "nodes:\n  g: { type: graph, file: \(outside.path)/shared.yaml }\n".write(toFile: top, atomically: true, encoding: .utf8)
        let reader = PipelineFileReader(pipelineFile: top)
        let loader = PipelineLoader(environment: [:], readSource: { try reader.read($0) })
        var printed = ""
        let source = try reader.read(top)
        do { _ = try loader.load(source, file: top) } catch { printed = error.description }
        #expect(printed.contains("shared.yaml:4:1: error: unknown top-level key '…'") && printed.contains("line not quoted"), "\(printed)")
        #expect(!printed.contains("hunter2"), "\(printed)")
    }

    @Test func hintsNameTheRunningProgram() {
        var validator = GraphValidator(registry: NodeRegistry(plugins: []))
        validator.commandName = "my-camflow"
        var loader = PipelineLoader(environment: [:])
        loader.commandName = "my-camflow"
        var printed = ""
        do {
            _ = try validator.validate(try loader.load("nodes:\n  a: { type: queue, colour: red }\n  b: { type: qeue }\n", file: "p.yaml"))
        } catch {
            printed = error.description
        }
        #expect(printed.contains("see 'my-camflow nodes queue'") && printed.contains("run 'my-camflow nodes' to list"), "\(printed)")
        #expect(!printed.contains("'camflow"), "\(printed)")
        do {
            _ = try loader.load("nodes:\n  a: { inputs: [] }\n", file: "p.yaml")
        } catch {
            #expect(error.description.contains("run 'my-camflow nodes' to list the types"), "\(error)")
        }
    }
}
