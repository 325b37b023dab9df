import Camflow

/// The events a recorder (file-record, event-record) announces, with the
/// node's id in each and one sequence across them, and its retention.
struct RecorderEvents {
    let node: String
    let root: String
    let keep: Duration?
    let maxTotalSize: Int?
    private var sequence: UInt64 = 0

    init(node: String, root: String, keep: Duration?, maxTotalSize: Int?) {
        self.node = node
        self.root = root
        self.keep = keep
        self.maxTotalSize = maxTotalSize
    }

    /// An event `name` on `stream`, `node` first among its fields.
    mutating func emit(_ name: String, stream: String, _ fields: [(key: String, value: EventValue)],
                       _ context: NodeContext) async {
        defer { sequence += 1 }
        await context.emit(.event(Event(name, [("node", .string(node))] + fields), stream: stream, sequence: sequence))
    }

    /// Deletes what the retention limits say (with none set, nothing), with a
    /// `deleted` event for each file; true when something was deleted.
    /// `orAtLeastOne`: on a full disk, the oldest file goes even within the limits.
    @discardableResult
    mutating func applyRetention(orAtLeastOne: Bool = false, _ context: NodeContext) async -> Bool {
        guard keep != nil || maxTotalSize != nil else { return false }
        let (deleted, failures) = RecordingFiles.applyRetention(root: root, keep: keep, maxTotalSize: maxTotalSize,
                                                     now: context.clock.wallNow, orAtLeastOne: orAtLeastOne)
        for file in deleted {
            // Retention works on the whole root, across streams: the event goes on the node's own stream.
            await emit("deleted", stream: node, [
                ("path", .string(file.path)), ("bytes", .int(Int64(file.size))), ("reason", .string(file.reason)),
            ], context)
        }
        if let failure = failures.first {
            // Once per pass, not per file: a folder retention may not write fails every file in it.
            context.logger.error("retention: \(failure)\(failures.count > 1 ? " (and \(failures.count - 1) more)" : "")")
        }
        return !deleted.isEmpty
    }
}
