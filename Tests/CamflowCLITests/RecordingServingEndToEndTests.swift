import CamflowTesting
import Foundation
import ISOBMFF
import NIOCore
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The web sink serving recordings a hostile camera or a hostile neighbour
/// below the root shaped: a fragment decoded at -2^63, index paths through
/// links to files outside, numbers no recording has, an index that cannot
/// be read. The server answers each and stays up.
@Suite struct RecordingServingEndToEndTests {
    /// A recordings root, a directory outside it, and a camflow serving the root.
    struct Served {
        let root: String
        let outside: String
        let process: CamflowProcess
        let port: Int

        func get(_ path: String) async throws -> (status: Int, body: Data) {
            let url = try #require(URL(string: "http://127.0.0.1:\(port)\(path)"))
            let (data, response) = try await URLSession.shared.data(from: url)
            return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
        }

        func listing() async throws -> (status: Int, text: String, recordings: [[String: Any]]) {
            let (status, body) = try await get("/api/recordings?from=0&to=100000")
            let object = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
            return (status, String(decoding: body, as: UTF8.self), object?["recordings"] as? [[String: Any]] ?? [])
        }
    }

    static func line(_ path: String, stream: String, start: String = "0", end: String = "3", wallStart: Double = 1000) -> String {
        #"{"path":"\#(path)","stream":"\#(stream)","start":\#(start),"end":\#(end),"wall_start":\#(wallStart),"keyframes":3,"fragments":3,"bytes":44229}"#
    }

    /// The baseline fixture (3 fragments of 1 s at timescale 12800) with the
    /// decode time of fragment `index` set to `time`.
    static func recording(decodeTime time: Int64, fragment index: Int) throws -> Data {
        var bytes = [UInt8](try Data(contentsOf: repositoryRoot.appendingPathComponent("Tests/Fixtures/h264-baseline.mp4")))
        var offset = 0
        var moofs = 0
        while offset + 8 <= bytes.count {
            let size = bytes[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) }
            if String(decoding: bytes[offset + 4..<offset + 8], as: UTF8.self) == "moof" {
                if moofs == index {
                    let moof = Array(bytes[offset..<offset + size])
                    let tfdt = try #require((0..<moof.count - 4).first { String(decoding: moof[$0..<$0 + 4], as: UTF8.self) == "tfdt" })
                    #expect(moof[tfdt + 4] == 1, "a version 1 tfdt")
                    let at = offset + tfdt + 8
                    for byte in 0..<8 { bytes[at + byte] = UInt8(truncatingIfNeeded: UInt64(bitPattern: time) >> (56 - 8 * byte)) }
                }
                moofs += 1
            }
            offset += size
        }
        #expect(moofs == 3)
        return Data(bytes)
    }

    func serve(_ lines: [String]) async throws -> Served {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-rec-\(UUID().uuidString)").path
        let root = base + "/root", outside = base + "/outside"
        for directory in [root + "/cam", outside] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: root + "/index.jsonl", atomically: true, encoding: .utf8)
        let pipeline = try temporaryPipeline("""
            nodes:
              replay: { type: file-replay, path: "\(repositoryRoot.path)/Tests/Fixtures/h264-baseline.mp4", realtime: true, loop: true }
              parse: { type: mp4-parse, inputs: [replay] }
              web: { type: web, inputs: [parse], bind: "127.0.0.1:0", recordings: ["\(root)"] }
            """)
        let process = try CamflowProcess(["run", pipeline, "--status-interval", "0"])
        try await process.waitForLine(timeout: .seconds(60), inStderr: true) { $0.contains("serving http://127.0.0.1:") }
        let line = try #require(process.stderr.split(separator: "\n").first { $0.contains("serving http://127.0.0.1:") })
        let digits = line.split(separator: "serving http://127.0.0.1:").last?.prefix { $0.isNumber } ?? ""
        let port = try #require(Int(String(digits)), "\(line)")
        return Served(root: root, outside: outside, process: process, port: port)
    }

    /// The fragments of a clip as the parser reads them.
    func fragments(_ clip: Data) -> (initSegments: Int, fragments: Int) {
        var parser = StreamingParser()
        parser.append(ByteBuffer(bytes: clip))
        var counts = (initSegments: 0, fragments: 0)
        while let item = try? parser.next() {
            if case .initSegment = item { counts.initSegments += 1 }
            if case .fragment = item { counts.fragments += 1 }
        }
        return counts
    }

    @Test func aFragmentDecodedAtInt64Min_isRefused_andTheServerStaysUp() async throws {
        let served = try await serve([Self.line("cam/min.mp4", stream: "min"), Self.line("cam/first.mp4", stream: "first")])
        defer { served.process.process.terminate() }
        try Self.recording(decodeTime: .min, fragment: 1).write(to: URL(fileURLWithPath: served.root + "/cam/min.mp4"))
        try Self.recording(decodeTime: .min, fragment: 0).write(to: URL(fileURLWithPath: served.root + "/cam/first.mp4"))
        // Cut across the fragment: the clip holds what came before it.
        let clip = try await served.get("/api/recordings/min/clip.mp4?start=1000&duration=3")
        #expect(clip.status == 200)
        #expect(fragments(clip.body).initSegments == 1 && fragments(clip.body).fragments >= 1, "\(clip.body.count) bytes")
        let first = try await served.get("/api/recordings/first/clip.mp4?start=1000.5&duration=2")
        #expect([200, 404].contains(first.status))
        #expect(try await served.get("/healthz").status == 200, "the server is up after the clips")
        #expect(served.process.process.isRunning)
        #expect(served.process.stderr.contains("does not parse (invalid-field at byte"), "\(served.process.stderr)")
    }

    @Test func pathsThroughLinks_areNotServed_andNumbersNoRecordingHasAreNot() async throws {
        let served = try await serve([
            Self.line("olink/secret.mp4", stream: "dirlink"), Self.line("flink.mp4", stream: "filelink"),
            Self.line("cam/ok.mp4", stream: "huge", start: "-1e308", end: "1e308", wallStart: 2000),
            Self.line("cam/ok.mp4", stream: "far", start: "0", end: "1e303", wallStart: 3000),
        ])
        defer { served.process.process.terminate() }
        let fixture = try Data(contentsOf: repositoryRoot.appendingPathComponent("Tests/Fixtures/h264-baseline.mp4"))
        try fixture.write(to: URL(fileURLWithPath: served.outside + "/secret.mp4"))
        try fixture.write(to: URL(fileURLWithPath: served.root + "/cam/ok.mp4"))
        try FileManager.default.createSymbolicLink(atPath: served.root + "/olink", withDestinationPath: served.outside)
        try FileManager.default.createSymbolicLink(atPath: served.root + "/flink.mp4", withDestinationPath: served.outside + "/secret.mp4")
        for stream in ["dirlink", "filelink"] {
            let clip = try await served.get("/api/recordings/\(stream)/clip.mp4?start=1000&duration=3")
            #expect([403, 404].contains(clip.status), "\(stream): \(clip.status)")
            #expect(fragments(clip.body).fragments == 0 && !clip.body.starts(with: fixture.prefix(64)), "\(stream): no content")
        }
        let listing = try await served.listing()
        #expect(listing.status == 200)
        #expect(Set(listing.recordings.compactMap { $0["stream"] as? String }) == ["huge", "far"], "\(listing.text)")
        #expect(!listing.text.contains("inf") && !listing.text.contains("null") && !listing.text.contains("e+"), "\(listing.text)")
        for recording in listing.recordings {
            let start = try #require(recording["start"] as? Double), end = try #require(recording["end"] as? Double)
            #expect(end == start, "an unknown media length, not 1e303: \(recording)")
        }
        #expect(try await served.get("/api/recordings/huge/clip.mp4?start=5000&duration=3").status == 404,
                "a huge end does not make a recording cover every time")
        // An index that exists but cannot be read is an error, said in the response and the log.
        try FileManager.default.removeItem(atPath: served.root + "/index.jsonl")
        try FileManager.default.createDirectory(atPath: served.root + "/index.jsonl", withIntermediateDirectories: false)
        let unreadable = try await served.listing()
        #expect(unreadable.status == 500, "\(unreadable.text)")
        #expect(unreadable.text.contains("not a regular file"), "\(unreadable.text)")
        let answer = (try? JSONSerialization.jsonObject(with: Data(unreadable.text.utf8))) as? [String: Any]
        #expect((answer?["error"] as? [String: Any])?["message"] is String && answer?["recordings"] == nil,
                "a JSON error, not an empty list: \(unreadable.text)")
        #expect(try await served.get("/api/recordings/huge/clip.mp4?start=2000&duration=3").status == 500)
        try await waitUntil("the log line", timeout: .seconds(10)) {
            served.process.stderr.contains("cannot read the recordings index '\(served.root)/index.jsonl'")
        }
        #expect(try await served.get("/healthz").status == 200)
    }
}
