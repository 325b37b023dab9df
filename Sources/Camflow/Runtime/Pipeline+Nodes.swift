import Logging

/// Running one node: its restart policy, a failure to start after a
/// reload, and what is left when it ends (its output finished, its input
/// released so nothing upstream waits on it).
extension Pipeline {
    /// How long a node a reload started must run before a failure counts
    /// as a failure of the running graph (which stops it) rather than a
    /// failure to start (which is reported, and the rest runs on). A bind
    /// to a port in use, a file that cannot be opened, fail well within it.
    public static let startupGrace = Duration.seconds(10)

    /// Runs a node under its restart policy, then ends its output and
    /// releases its input so nothing upstream waits on it.
    func runToEnd(_ node: RuntimeNode) async {
        var outcome = await runUnderPolicy(node, configuration: node.node)
        // A node a reload started that cannot start never takes the running graph down with it.
        if case .failed(let error, let ranHealthy) = outcome, !ranHealthy, let reload = node.reload, !node.stop.isFired {
            // It goes into a log line and an event: escaped, bounded, and any URL's password masked.
            let message = UntrustedText.printable(Redaction.url(String(describing: error)), limit: 1_000)
            let failure = NodeFailure(node: node.node.spec.id, type: node.node.type.name, message: message)
            let fallback = node.previous.flatMap { $0.type.name == node.node.type.name ? $0 : nil }
            let outcomeText = fallback == nil ? "the rest of the graph runs on" : "it runs on with its previous settings"
            logger.error("reload: \(failure); \(outcomeText)")
            reportStartFailure(failure, of: reload)
            if let fallback {
                // The instance a reload replaced has ended (the new one waited for it); its settings
                // are started again in its place, on the same edges.
                outcome = await runUnderPolicy(node, configuration: fallback)
                // Its previous settings may not start again either (their port taken meanwhile): reported too.
                if case .failed(let error, let ranHealthy) = outcome, !ranHealthy, !node.stop.isFired {
                    logger.error("reload: node '\(failure.node)' failed again with its previous settings: \(error); the rest of the graph runs on")
                    outcome = .finished
                }
            } else {
                outcome = .finished
            }
        }
        node.output.finish()
        node.input.discardRemaining()
        // An instance told to stop that fails (a reload retired it, or the pipeline is being
        // ended at once) is logged; the pipeline runs on, or ends as it was going to.
        if case .failed(let error, _) = outcome, !node.node.type.isSource && node.stop.isFired {
            logger.warning("node '\(node.node.spec.id)' failed after it was told to stop (retired by a reload, or the pipeline ending): \(error)")
        } else if case .failed(let error, _) = outcome {
            let failure = NodeFailure(node: node.node.spec.id, type: node.node.type.name,
                                      message: String(describing: error))
            logger.error("\(failure)")
            state.withLock { $0.recordFailure(failure) }
            requestStop()
        }
    }

    /// The node's `configuration` run under its restart policy, on a thread
    /// of its own when it blocks.
    private func runUnderPolicy(_ node: RuntimeNode, configuration: PipelineGraph.Node) async -> Outcome {
        if configuration.type.performsBlockingIO {
            await BlockingIOThread.run(name: "camflow " + configuration.spec.id) {
                await self.runWithRestarts(node, configuration: configuration)
            }
        } else {
            await runWithRestarts(node, configuration: configuration)
        }
    }

    /// Tells the log's readers and `pipeline-events` that a node of a reload
    /// failed to start; the next reload tries it again even if unchanged.
    private func reportStartFailure(_ failure: NodeFailure, of reload: RuntimeNode.Reload) {
        var report = reload.diff
        report.failedToStart = [failure]
        // The snapshot's last reload says it too, while it is the last one.
        let subscribers = state.withLock { $0.recordStartFailure(failure, reload: reload.number) }
        for subscriber in subscribers { subscriber.yield(report) }
    }

    private enum Outcome {
        case finished
        /// `ranHealthy`: some attempt ran for ``Pipeline/startupGrace`` or longer.
        case failed(any Error, ranHealthy: Bool)
    }

    private func runWithRestarts(_ runtimeNode: RuntimeNode, configuration: PipelineGraph.Node) async -> Outcome {
        let spec = configuration.spec
        let isSource = configuration.type.isSource
        var logger = self.logger
        logger[metadataKey: "node"] = .string(spec.id)
        let context = NodeContext(
            id: spec.id, typeName: spec.type, input: runtimeNode.input, output: runtimeNode.output,
            logger: logger, stats: runtimeNode.stats, pipeline: view, clock: clock)
        if configuration.type.reportsConnection { runtimeNode.stats.setConnected(false) }
        var attempt = 0
        var ranHealthy = false
        while true {
            let started = clock.now
            do {
                let node = try configuration.type.make(configuration.options)
                runtimeNode.stats.running.store(true, ordering: .relaxed)
                defer { runtimeNode.stats.running.store(false, ordering: .relaxed) }
                try await node.run(context)
                return .finished
            } catch {
                // A source told to stop may surface the cancellation as an error.
                if isSource && Task.isCancelled { return .finished }
                runtimeNode.stats.failures.add(1, ordering: .relaxed)
                let policy = spec.restart
                let ran = clock.elapsed(since: started)
                if ran >= Self.startupGrace { ranHealthy = true }
                // After a healthy run, a failure starts the count (and the backoff) over.
                if ran >= policy.resetAfter { attempt = 0 }
                attempt += 1
                // A retired instance is not restarted: its new instance takes over.
                guard policy.mode == .onFailure, attempt <= policy.maxRestarts ?? .max, !runtimeNode.stop.isFired else {
                    return .failed(error, ranHealthy: ranHealthy)
                }
                let delay = policy.delay(beforeAttempt: attempt)
                let limit = policy.maxRestarts.map { " of \($0)" } ?? ""
                logger.warning("node failed; restarting in \(delay.shortDescription) (restart \(attempt)\(limit))",
                               metadata: ["error": "\(error)"])
                do {
                    try await clock.sleep(for: delay)
                } catch {
                    return .finished
                }
                runtimeNode.stats.restarts.add(1, ordering: .relaxed)
            }
        }
    }
}
