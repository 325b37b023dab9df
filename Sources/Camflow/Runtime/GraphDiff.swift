/// What a reload changes: the new graph compared with the running one, node
/// by node. A node is kept when its id, type, options (after interpolation),
/// inputs, capacity and restart policy are all the same; it keeps running
/// with its state and connections. Otherwise it is replaced (same id),
/// removed or added. A pure value, tested without a pipeline.
public struct GraphDiff: Sendable, Equatable, CustomStringConvertible {
    public var kept: [String] = []
    public var replaced: [String] = []
    public var added: [String] = []
    public var removed: [String] = []
    /// Nodes this reload started that failed to start (beyond their restart
    /// policy, within ``Pipeline/startupGrace``): reported after the reload,
    /// with the same changes. The rest of the graph runs on.
    public var failedToStart: [NodeFailure] = []

    public init(from old: PipelineGraph, to new: PipelineGraph) {
        for node in new.nodes {
            guard let before = old.node(node.spec.id) else {
                added.append(node.spec.id)
                continue
            }
            if before.spec.hasSameConfiguration(as: node.spec) { kept.append(node.spec.id) } else { replaced.append(node.spec.id) }
        }
        removed = old.nodes.map(\.spec.id).filter { new.node($0) == nil }
    }

    /// Nothing changes.
    public var isEmpty: Bool { replaced.isEmpty && added.isEmpty && removed.isEmpty }

    /// "kept 5, replaced 1 (log), added 1 (stats), removed 0"; then
    /// "; failed to start: node 'web' (web) failed: ..." for each failure.
    public var description: String {
        func part(_ word: String, _ ids: [String], listed: Bool = true) -> String {
            "\(word) \(ids.count)" + (listed && !ids.isEmpty ? " (\(ids.joined(separator: ", ")))" : "")
        }
        return [part("kept", kept, listed: false), part("replaced", replaced), part("added", added), part("removed", removed)]
            .joined(separator: ", ") + failedToStart.map { "; failed to start: \($0)" }.joined()
    }

    /// Nodes that failed to start last time are started again even when
    /// their settings did not change: a reload after the cause is fixed
    /// (a port freed) retries them.
    mutating func retry(_ ids: Set<String>) {
        let again = kept.filter(ids.contains)
        guard !again.isEmpty else { return }
        kept.removeAll(where: ids.contains)
        replaced += again
    }
}

extension NodeSpec {
    /// The same node as far as running it goes: where it was written does not count.
    func hasSameConfiguration(as other: NodeSpec) -> Bool {
        type == other.type && inputs == other.inputs && capacity == other.capacity && restart == other.restart
            && options.count == other.options.count
            && options.allSatisfy { key, value in other.options[key].map { value.hasSameContent(as: $0) } ?? false }
    }
}

extension OptionValue {
    /// Equal values, wherever they were written.
    func hasSameContent(as other: OptionValue) -> Bool {
        switch (content, other.content) {
        case (.scalar(let a), .scalar(let b)): a == b
        case (.list(let a), .list(let b)): a.count == b.count && zip(a, b).allSatisfy { $0.hasSameContent(as: $1) }
        case (.map(let a), .map(let b)):
            a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value.hasSameContent(as: $1.value) }
        default: false
        }
    }
}
