@testable import FilesPlugin
import Foundation
import Testing

@Suite struct SafeDirectoryTests {
    func scratch() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-safe-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func linksAreNeitherFollowedNorReplaced() throws {
        let root = try scratch()
        let victim = try scratch() + "/victim"
        try "precious".write(toFile: victim, atomically: true, encoding: .utf8)
        let directory = try SafeDirectory.open(root: root, relative: ["cam1", "2026"])
        defer { directory.close() }
        try FileManager.default.createSymbolicLink(atPath: root + "/cam1/2026/a.mp4.partial", withDestinationPath: victim)
        #expect(try directory.createExclusive("a.mp4.partial") == nil, "a planted link counts as taken")
        let file = try #require(try directory.createExclusive("b.mp4.partial"))
        close(file)
        try FileManager.default.createSymbolicLink(atPath: root + "/cam1/2026/b.mp4", withDestinationPath: victim)
        #expect(try directory.publish("b.mp4.partial", stem: "b") == root + "/cam1/2026/b-1.mp4")
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious")
        // A directory below the root that is a link is refused.
        try FileManager.default.createSymbolicLink(atPath: root + "/cam2", withDestinationPath: (victim as NSString).deletingLastPathComponent)
        #expect(throws: RecordingError.self) { try SafeDirectory.open(root: root, relative: ["cam2"]) }
    }
}
