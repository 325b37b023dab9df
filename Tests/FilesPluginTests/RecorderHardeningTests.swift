import CamflowTesting
import Camflow
@testable import FilesPlugin
import Foundation
import ISOBMFF
import InstarSimulator
import NIOCore
import Testing

/// What a hostile stream or a hostile neighbour below the root can do to
/// the recorders' files and index.
@Suite struct RecorderHardeningTests {
    func finished(_ path: String, stream: String = "cam1") -> FinishedRecording {
        FinishedRecording(path: path, stream: stream, start: 0, end: 1, wallStart: 1.7e9, keyframes: 1, fragments: 1, bytes: 1)
    }

    @Test func anIndexLineTornByAFullDisk_costsOnlyItself() throws {
        let root = try temporaryDirectory()
        for name in ["a.mp4", "b.mp4"] { #expect(FileManager.default.createFile(atPath: root + "/" + name, contents: Data([0]))) }
        #expect(RecordingFiles.appendIndex(finished(root + "/a.mp4"), root: root) == nil)
        // The disk filled mid-line: the line has no end.
        let handle = try #require(FileHandle(forWritingAtPath: root + "/index.jsonl"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"path":"c.mp4","str"#.utf8))
        try handle.close()
        #expect(RecordingFiles.appendIndex(finished(root + "/b.mp4"), root: root) == nil)
        #expect(try RecordingIndex.read(root: root).map(\.path) == ["a.mp4", "b.mp4"])
    }

    @Test func anIndexThatIsALink_isNeitherFollowedNorWritten() throws {
        let root = try temporaryDirectory()
        let elsewhere = try temporaryDirectory() + "/victim"
        #expect(FileManager.default.createFile(atPath: elsewhere, contents: Data("precious\n".utf8)))
        try FileManager.default.createSymbolicLink(atPath: root + "/index.jsonl", withDestinationPath: elsewhere)
        let failure = RecordingFiles.appendIndex(finished(root + "/a.mp4"), root: root)
        #expect(failure?.errno == ELOOP, "\(String(describing: failure))")
        #expect(try String(contentsOfFile: elsewhere, encoding: .utf8) == "precious\n")
    }

    @Test func longStreamNames_fitAPathComponent_andStayApart() throws {
        let a = String(repeating: "x", count: 300) + "a", b = String(repeating: "x", count: 300) + "b"
        let path = try RecordingPath("/rec/{stream}/%H%M%S.mp4")
        let first = path.path(stream: a, node: "n", time: 0), second = path.path(stream: b, node: "n", time: 0)
        let components = first.split(separator: "/").map(\.utf8.count)
        #expect(components.allSatisfy { $0 <= RecordingPath.maxNameBytes }, "\(components)")
        #expect(first != second)
        #expect(RecordingPath.sanitize("cam/1") == "cam_1" && RecordingPath.sanitize("..") == "_")
        #expect(RecordingPath.sanitize(String(repeating: "y", count: 96)).count == 96, "a name that fits is kept whole")
    }

    @Test func aRecoveredFile_keepsItsStream_andBeganItsLengthBeforeItsLastWrite() throws {
        let boxes = SimulatedMedia.boxes(try fixtureBytes("h264-baseline.mp4"))
        let root = try temporaryDirectory()
        let directory = root + "/cam1/20261206"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var partial = ByteBuffer()
        for box in boxes.prefix(6) { partial.writeImmutableBuffer(box) } // ftyp moov and two 1 s fragments
        try Data(partial.readableBytesView).write(to: URL(fileURLWithPath: directory + "/100000.mp4.partial"))
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSince1970: 1_765_000_000)],
                                              ofItemAtPath: directory + "/100000.mp4.partial")
        let template = try RecordingPath(root + "/{stream}/%Y%m%d/%H%M%S.mp4")
        let recovered = RecordingFiles.recoverPartials(under: root, log: TestHarness().logger,
                                                       stream: template.stream(ofRelative:))
        #expect(recovered.count == 1)
        #expect(recovered.first?.stream == "cam1")
        #expect(recovered.first.map { abs($0.wallStart - (1_765_000_000 - 2)) < 0.01 } == true,
                "\(String(describing: recovered.first?.wallStart))")
    }
}
