import ArgumentParser
import Camflow
import CamflowCLI
import Logging
import ServiceLifecycle
import ZeroMQPlugin

/// `camflow broker`: an XSUB/XPUB forwarder between many publishers and subscribers.
struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Forward ZeroMQ messages from many camflow publishers to many subscribers (XSUB/XPUB).",
        discussion: """
            Publishers (zmq-publish with 'connect: true') connect to the frontend; subscribers \
            (zmq-subscribe, or any SUB socket) connect to the backend. Prints 'frontend: ENDPOINT' and \
            'backend: ENDPOINT' once bound (a '*' port shows the real one), counters every \
            --status-interval, and counters at exit (Ctrl-C or SIGTERM).
            """)

    @Option(help: "Endpoint(s) publishers connect to.")
    var frontend: [String] = ["tcp://*:5555"]

    @Option(help: "Endpoint(s) subscribers connect to.")
    var backend: [String] = ["tcp://*:5556"]

    @Option(help: "Print counters this often, such as 10s; never when unset.")
    var statusInterval: String?

    @Option(help: "Ping every publisher and subscriber this often; one silent for three pings is dropped (0s: never).")
    var heartbeat: String = "1s"

    @Option(help: "File with the broker's CURVE secret key ('camflow keygen'): both sides encrypt and admit only --allowed-client-keys-file.")
    var curveSecretKeyFile: String?

    @Option(help: "File of the public keys (one per line) of the publishers and subscribers admitted over CURVE.")
    var allowedClientKeysFile: String?

    func validate() throws {
        if Units.duration(heartbeat) == nil {
            throw ValidationError("--heartbeat: expected a duration such as 1s, found '\(heartbeat)'")
        }
        if let statusInterval, Units.duration(statusInterval).map({ $0 > .zero }) != true {
            throw ValidationError("--status-interval: expected a duration such as 10s, found '\(statusInterval)'")
        }
    }

    func run() async throws {
        var curve: (secretKey: String, allowedClients: [String])?
        if let curveSecretKeyFile {
            guard let allowedClientKeysFile else {
                throw ValidationError("--curve-secret-key-file needs --allowed-client-keys-file: a CURVE broker admits only listed keys")
            }
            do {
                let secrets = try CurveKey.keys(inFile: curveSecretKeyFile, kind: "secret-key")
                guard secrets.count == 1 else { throw CurveKeyError(description: "'\(curveSecretKeyFile)' must hold one secret key") }
                curve = (secrets[0], try CurveKey.keys(inFile: allowedClientKeysFile, kind: "public-key"))
            } catch {
                printError("error: \(error)")
                throw ExitCodes.invalidPipeline
            }
        }
        let broker = ZMQBroker(frontends: frontend, backends: backend, curve: curve, heartbeat: Units.duration(heartbeat) ?? .seconds(1))
        let interval = statusInterval.flatMap(Units.duration)
        let group = ServiceGroup(configuration: .init(
            services: [BrokerService(broker: broker, interval: interval)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: Logger(label: "camflow.broker")))
        do {
            try await group.run()
        } catch {
            printError("error: \(error)")
            throw ExitCodes.failure
        }
    }
}

private struct BrokerService: Service {
    let broker: ZMQBroker
    let interval: Duration?

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                try await broker.run(interval: interval, ready: { frontends, backends in
                    for endpoint in frontends { printOutput("frontend: \(endpoint)") }
                    for endpoint in backends { printOutput("backend: \(endpoint)") }
                }, report: { statistics, final in
                    printOutput("\(final ? "final" : "status"): \(statistics)")
                })
            }
        } catch is CancellationError {
            return
        }
    }
}
