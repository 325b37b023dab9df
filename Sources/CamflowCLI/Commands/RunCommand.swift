import ArgumentParser
import Camflow
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

/// `camflow run FILE`: runs a pipeline until its sources end or it is stopped.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a pipeline until its sources end, or until Ctrl-C / SIGTERM.",
        discussion: """
            On Ctrl-C or SIGTERM the sources stop first, queued packets drain and sinks flush; \
            the exit code is then 0. A live status table goes to stderr every --status-interval \
            when stderr is a terminal, and a summary at exit. SIGHUP reloads the file, and with \
            --watch so does a change to it (or to a graph file it includes): the new graph is \
            checked first (an invalid one is reported and the running graph stays), then only what \
            changed is replaced; unchanged nodes keep running with their connections and state. A node \
            the reload starts that fails to start (a port in use) is reported and the rest runs on; a \
            replaced one runs again with its previous settings, and the next reload retries it. \
            ${VAR} values are read from the environment once, at start.
            """)

    @Argument(help: "The pipeline file (YAML).")
    var file: String

    @Option(help: "Seconds between status tables on a terminal, such as 5s; 0 turns them off.")
    var statusInterval: String = "5s"

    @Option(name: .customLong("for"), help: "Stop gracefully after this long, such as 30s or 2m.")
    var runFor: String?

    @Option(help: "Longest wait for the graph to drain after a stop before it is cut short.")
    var shutdownTimeout: String = "10s"

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Flag(help: "Do not print the summary at exit.")
    var quiet = false

    @Flag(help: "Reload when the file (or a graph file it includes) changes; ${VAR}s keep their values from the start.")
    var watch = false

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level: expected trace, debug, info, notice, warning, error or critical, found '\(logLevel)'")
        }
        try validateDurations([("--status-interval", statusInterval), ("--shutdown-timeout", shutdownTimeout),
                               ("--for", runFor)])
    }

    func run() async throws {
        bootstrapLogging(Logger.Level(rawValue: logLevel) ?? .info)
        let logger = Logger(label: "camflow")
        let environment = ProcessInfo.processInfo.environment
        guard let loaded = PipelineFile.read(file, registry: CommandEnvironment.registry, environment: environment) else {
            throw ExitCodes.invalidPipeline
        }
        let graph = loaded.graph
        let registry = bootstrapMetrics()
        let clock = SystemClock()
        let pipeline = Pipeline(graph: graph, logger: logger, metricsText: { registry.emitToString() }, clock: clock)
        let statusEvery = Units.duration(statusInterval) ?? .seconds(5)
        let stopAfter = runFor.flatMap(Units.duration)

        var configuration = ServiceGroupConfiguration(
            services: [.init(service: pipeline, successTerminationBehavior: .gracefullyShutdownGroup,
                             serviceName: "pipeline \(graph.name)")],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        configuration.maximumGracefulShutdownDuration = Units.duration(shutdownTimeout)
        let group = ServiceGroup(configuration: configuration)

        var failure: (any Error)?
        await withTaskGroup(of: Void.self) { tasks in
            if let stopAfter {
                tasks.addTask {
                    do { try await clock.sleep(for: stopAfter) } catch { return }
                    // As Ctrl-C does: drain, and cancel what has not drained by --shutdown-timeout.
                    await group.triggerGracefulShutdown()
                }
            }
            let watcher = PipelineWatcher(path: file, registry: CommandEnvironment.registry, environment: environment,
                                          pipeline: pipeline, watch: watch, files: loaded.files, clock: clock)
            tasks.addTask { await watcher.run() }
            if statusEvery > .zero, OutputStream.standardError.isTerminal {
                tasks.addTask {
                    var previous: PipelineSnapshot?
                    while true {
                        do { try await clock.sleep(for: statusEvery) } catch { return }
                        let now = pipeline.snapshot()
                        printError(now.table(previous: previous) + "\n")
                        previous = now
                    }
                }
            }
            do {
                try await group.run()
            } catch {
                failure = error
            }
            tasks.cancelAll()
        }
        if !quiet {
            printError(pipeline.snapshot().table())
            // Read by operators and by the hostile-input tests, which bound it.
            let peak = ResourceUsage.peakResidentKiB()
            printError("peak memory \(peak / 1024).\(peak % 1024 * 10 / 1024) MiB")
        }
        if let failure {
            if failure is PipelineFailure {
                printError("error: \(failure)")
            } else {
                printError("error: the pipeline did not stop cleanly: \(failure)")
            }
            throw ExitCodes.failure
        }
    }
}

/// The executable's metrics backend: swift-metrics into a Prometheus
/// registry, which the `web` node serves on `/metrics`.
private func bootstrapMetrics() -> PrometheusCollectorRegistry {
    let registry = PrometheusCollectorRegistry()
    var factory = PrometheusMetricsFactory(registry: registry)
    // camflow's timers measure its own share of a viewer's latency (camflow_web_delivery_seconds):
    // fine below 10 ms, where the goal lies, instead of the library's default that starts at 5 ms.
    factory.defaultDurationHistogramBuckets = [0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 20, 50, 100, 250, 1000]
        .map { Duration.microseconds(Int64($0 * 1000)) }
    MetricsSystem.bootstrap(factory)
    return registry
}
