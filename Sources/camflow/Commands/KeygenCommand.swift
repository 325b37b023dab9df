import ArgumentParser
import CamflowCLI
import Foundation
import ZeroMQPlugin

/// `camflow keygen`: a new CURVE keypair for zmq-publish, zmq-subscribe and the broker.
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Print a new CURVE keypair (Z85) for ZeroMQ encryption and client authorisation.",
        discussion: """
            Prints 'public-key = "..."' and 'secret-key = "..."', the format the 'curve-secret-key-file' \
            and 'allowed-client-keys-file' options and the broker's key files read. With --out FILE the \
            secret goes to FILE (created with mode 0600, never overwritten) and the public key to \
            FILE.pub; only the public key is printed then. Give the public key to the other side; keep \
            the secret.
            """)

    @Option(help: "Write the keypair to this file (0600) and the public key to FILE.pub instead of printing the secret.")
    var out: String?

    func run() throws {
        let pair = try CurveKey.keypair()
        let publicLine = "public-key = \"\(pair.publicKey)\"\n"
        guard let out else {
            print(publicLine + "secret-key = \"\(pair.secretKey)\"", terminator: "\n")
            return
        }
        try write(publicLine + "secret-key = \"\(pair.secretKey)\"\n", to: out, mode: 0o600)
        try write(publicLine, to: out + ".pub", mode: 0o644)
        print(publicLine, terminator: "")
    }

    private func write(_ text: String, to path: String, mode: mode_t) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else {
            printError("error: cannot create '\(path)': \(String(cString: strerror(errno)))")
            throw ExitCodes.failure
        }
        defer { close(fd) }
        let written = text.withCString { Foundation.write(fd, $0, strlen($0)) }
        guard written == text.utf8.count else {
            printError("error: cannot write '\(path)'")
            throw ExitCodes.failure
        }
    }
}
