/// `pipeline-events`: the pipeline's own events as packets, for the same
/// sinks as any other event (log, mqtt-publish, zmq-publish).
struct PipelineEventsNode: Node {
    static let type = NodeType(
        name: "pipeline-events",
        summary: "Emits the pipeline's own events: one 'reload' event per reload of the pipeline file.",
        details: """
            Each reload that changed the graph is a 'reload' event on the stream named by the \
            pipeline (its 'name', or the node id when unnamed) with the fields kept, replaced, \
            added and removed (counts) and changes ('kept 5, replaced 1 (log), added 1 (stats), \
            removed 0'). A node that a reload adds starts with the event of that reload. A node a \
            reload started that fails to start (a port in use) is one more 'reload' event with the \
            same counts and the fields failed (the node id) and error; the rest of the graph runs \
            on, and a replaced node runs again with its previous settings.
            """,
        accepts: [],
        emits: .kinds(.event),
        make: { _ in PipelineEventsNode() })

    func run(_ context: NodeContext) async throws {
        let stream = context.pipeline.graph.name.isEmpty ? context.id : context.pipeline.graph.name
        var sequence: UInt64 = 0
        for await diff in context.pipeline.reloadEvents() {
            var fields: [(key: String, value: EventValue)] = [
                ("kept", .int(Int64(diff.kept.count))), ("replaced", .int(Int64(diff.replaced.count))),
                ("added", .int(Int64(diff.added.count))), ("removed", .int(Int64(diff.removed.count))),
                ("changes", .string(diff.description)),
            ]
            // One failure per event: each is reported as it happens.
            if let failure = diff.failedToStart.first {
                fields += [("failed", .string(failure.node)), ("error", .string(failure.message))]
            }
            await context.emit(.event(Event("reload", fields), stream: stream, sequence: sequence))
            sequence += 1
        }
    }
}
