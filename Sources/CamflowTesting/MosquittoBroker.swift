import Camflow
import Foundation

/// A real `mosquitto` broker (Debian's package) on a free loopback port, for
/// tests of MQTT nodes. It can be stopped and started again on the same
/// port, to test reconnection.
public final class MosquittoBroker: @unchecked Sendable {
    // @unchecked: the process is replaced only by start and stop, which tests call in sequence.
    public let port: Int
    public var url: String { "\(isTLS ? "mqtts" : "mqtt")://127.0.0.1:\(port)" }
    private var isTLS: Bool { (try? String(contentsOf: directory.appendingPathComponent("mosquitto.conf"), encoding: .utf8))?.contains("certfile") == true }
    private let directory: URL
    private var process: Process?

    /// Whether `mosquitto` is installed: tests that need it say so when not.
    public static var isInstalled: Bool { executable != nil }

    private static let executable: String? = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    /// PEM files for a TLS listener.
    public struct TLS: Sendable {
        public var caFile: String
        public var certificateFile: String
        public var keyFile: String
        /// Refuse clients without a certificate the CA signed.
        public var requireClientCertificate: Bool

        public init(caFile: String, certificateFile: String, keyFile: String, requireClientCertificate: Bool) {
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.requireClientCertificate = requireClientCertificate
        }
    }

    /// Starts a broker that lets anyone in, on a port nothing else holds;
    /// with `tls`, the listener speaks TLS only.
    public init(tls: TLS? = nil) async throws {
        guard let port = Loopback.freePort() else { throw WaitTimedOut(what: "a free port") }
        self.port = port
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-mosquitto-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var configuration = """
            listener \(port) 127.0.0.1
            allow_anonymous true
            persistence false

            """
        if let tls {
            configuration += """
                cafile \(tls.caFile)
                certfile \(tls.certificateFile)
                keyfile \(tls.keyFile)
                require_certificate \(tls.requireClientCertificate)

                """
        }
        try configuration.write(to: directory.appendingPathComponent("mosquitto.conf"), atomically: true, encoding: .utf8)
        try await start()
    }

    deinit {
        if let process, process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// Starts the broker (again) and waits until it accepts connections.
    public func start() async throws {
        guard let executable = Self.executable else { throw WaitTimedOut(what: "mosquitto to be installed (Debian: mosquitto)") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["-c", directory.appendingPathComponent("mosquitto.conf").path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: logFile())
        try process.run()
        self.process = process
        try await waitUntil("mosquitto to listen on port \(port)", timeout: .seconds(20)) {
            guard let fd = Loopback.connect(port: self.port) else { return false }
            close(fd)
            return true
        }
    }

    /// Kills the broker, as a crash or power loss would, and waits until it
    /// has exited. (SIGKILL: a test runner's threads block SIGTERM, and a
    /// child inherits that mask, so mosquitto would never see it.)
    public func stop() async throws {
        guard let process else { return }
        kill(process.processIdentifier, SIGKILL)
        try await waitUntil("mosquitto to exit", timeout: .seconds(20)) { !process.isRunning }
        self.process = nil
    }

    /// What the broker logged (connections, errors).
    public var log: String { (try? String(contentsOf: directory.appendingPathComponent("mosquitto.log"), encoding: .utf8)) ?? "" }

    private func logFile() throws -> URL {
        let url = directory.appendingPathComponent("mosquitto.log")
        if !FileManager.default.fileExists(atPath: url.path) { _ = FileManager.default.createFile(atPath: url.path, contents: nil) }
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        try handle.close()
        return url
    }
}
