import CamflowTesting
import Camflow
import Foundation
import Testing

/// CURVE over ZeroMQ as operators set it up: keys from `camflow keygen`,
/// a publisher that admits only listed subscribers, the real binaries.
@Suite struct CurveEndToEndTests {
    /// A keypair written by `camflow keygen --out`; returns the secret file and the public key.
    func keygen(_ directory: String, _ name: String) async throws -> (file: String, publicKey: String) {
        let file = directory + "/" + name
        let result = try await camflow("keygen", "--out", file)
        #expect(result.status == 0, "\(result.stderr)")
        let line = try String(contentsOfFile: file + ".pub", encoding: .utf8)
        let key = line.split(separator: "\"").dropFirst().first.map(String.init) ?? ""
        #expect(key.count == 40)
        let mode = (try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600, "the secret key file is readable by its owner only")
        return (file, key)
    }

    /// A key written inline in a pipeline: '${' is a Z85 sequence too, and pipelines read it as a variable.
    func literal(_ key: String) -> String { key.replacingOccurrences(of: "${", with: "$${") }

    /// `camflow run` of zmq-subscribe → log, a CURVE client of the server with `serverKey`.
    func curveSubscriber(_ endpoint: String, serverKey: String, secretFile: String) throws -> CamflowProcess {
        try CamflowProcess(["run", try temporaryPipeline("""
            nodes:
              sub: { type: zmq-subscribe, endpoint: "\(endpoint)", topics: [cam1/], curve-server-key: "\(literal(serverKey))",
                     curve-secret-key-file: \(secretFile) }
              log: { type: log, inputs: [sub] }
            """)])
    }

    @Test func onlyListedSubscribers_receive() async throws {
        let keys = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-keys-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: keys, withIntermediateDirectories: true)
        let server = try await keygen(keys, "server")
        let allowed = try await keygen(keys, "allowed")
        let stranger = try await keygen(keys, "stranger")
        let clip = repositoryRoot.appendingPathComponent("Tests/Fixtures/h264-main-aac.mp4").path
        let publisher = try CamflowProcess(["run", try temporaryPipeline("""
            nodes:
              cam1: { type: file-replay, path: \(clip), loop: true, rate: 256KiB/s }
              parse: { type: mp4-parse, inputs: [cam1] }
              publish: { type: zmq-publish, inputs: [parse], endpoint: "tcp://127.0.0.1:*", curve-server: true,
                         curve-secret-key-file: \(server.file), allowed-client-keys: ["\(literal(allowed.publicKey))"] }
            """), "--status-interval", "0"])
        defer { publisher.process.terminate() }
        let endpoint = try await publishedEndpoint(publisher)
        let admitted = try curveSubscriber(endpoint, serverKey: server.publicKey, secretFile: allowed.file)
        let refused = try curveSubscriber(endpoint, serverKey: server.publicKey, secretFile: stranger.file)
        defer { admitted.process.terminate(); refused.process.terminate() }
        try await admitted.waitForOutput(lines: 20)
        try await publisher.waitForLine(inStderr: true) { $0.contains("refused a CURVE client") && $0.contains(stranger.publicKey) }
        // By now the admitted subscriber had 20 packets; the stranger had the same time and gets nothing.
        try await admitted.waitForOutput(lines: 40)
        #expect(refused.stdout.isEmpty, "an unlisted key received:\n\(refused.stdout.prefix(300))")
        #expect(!publisher.stderr.contains(allowed.publicKey), "the admitted key is not reported")
    }

    @Test func aCurveBroker_admitsOnlyListedPublishersAndSubscribers() async throws {
        let keys = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-keys-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: keys, withIntermediateDirectories: true)
        let broker = try await keygen(keys, "broker")
        let member = try await keygen(keys, "member")
        let stranger = try await keygen(keys, "stranger")
        // The broker admits the member's key (one file of public keys), on both sides.
        let process = try CamflowProcess(["broker", "--frontend", "tcp://127.0.0.1:*", "--backend", "tcp://127.0.0.1:*",
                                          "--curve-secret-key-file", broker.file, "--allowed-client-keys-file", member.file + ".pub"])
        defer { process.process.terminate() }
        try await process.waitForOutput(lines: 2)
        let lines = process.stdout.split(separator: "\n")
        let frontend = try #require(lines.first { $0.hasPrefix("frontend: ") }?.dropFirst(10))
        let backend = try #require(lines.first { $0.hasPrefix("backend: ") }?.dropFirst(9))
        let clip = repositoryRoot.appendingPathComponent("Tests/Fixtures/h264-main-aac.mp4").path
        let publisher = try CamflowProcess(["run", try temporaryPipeline("""
            nodes:
              cam1: { type: file-replay, path: \(clip), loop: true, rate: 256KiB/s }
              parse: { type: mp4-parse, inputs: [cam1] }
              publish: { type: zmq-publish, inputs: [parse], endpoint: "\(frontend)", connect: true,
                         curve-server-key: "\(literal(broker.publicKey))", curve-secret-key-file: \(member.file) }
            """)])
        defer { publisher.process.terminate() }
        let admitted = try curveSubscriber(String(backend), serverKey: broker.publicKey, secretFile: member.file)
        let refused = try curveSubscriber(String(backend), serverKey: broker.publicKey, secretFile: stranger.file)
        defer { admitted.process.terminate(); refused.process.terminate() }
        try await admitted.waitForOutput(lines: 20)
        try await waitUntil("the broker refused the stranger", timeout: .seconds(30)) {
            process.stderr.contains("refused a CURVE client") && process.stderr.contains(stranger.publicKey)
        }
        try await admitted.waitForOutput(lines: 40)
        #expect(refused.stdout.isEmpty, "an unlisted key received through the broker")
    }

    @Test func aCurveServer_withoutAllowedClients_isRefusedAtLoad() async throws {
        let pipeline = try temporaryPipeline("""
            nodes:
              src: { type: file-replay, path: /dev/null }
              publish: { type: zmq-publish, inputs: [src], endpoint: "tcp://127.0.0.1:*", curve-server: true,
                         curve-secret-key: "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs" }
            """)
        let result = try await camflow("validate", pipeline)
        #expect(result.status == 2)
        #expect(result.stderr.contains("a CURVE server admits only listed clients"), "\(result.stderr)")
        #expect(!result.stderr.contains("D:)Q[IlAW"), "the secret key is never printed")
    }
}
