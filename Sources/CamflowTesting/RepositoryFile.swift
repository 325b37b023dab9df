public import Foundation

/// A file of the repository a test belongs to, found by walking up from the
/// test's own source file: `repositoryFile("Tests/Fixtures/clip.mp4")`.
public func repositoryFile(_ relativePath: String, from testFile: String = #filePath) -> URL {
    var directory = URL(fileURLWithPath: testFile)
    while directory.path != "/" {
        directory.deleteLastPathComponent()
        let candidate = directory.appendingPathComponent(relativePath)
        if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
    }
    return URL(fileURLWithPath: relativePath)
}
