/// A pipeline whose every check passed: types found, options decoded, inputs
/// resolved, no cycle, packet kinds compatible. Nodes are in an order where
/// every node comes after its inputs.
public struct PipelineGraph: Sendable {
    /// One checked node.
    public struct Node: Sendable {
        public let spec: NodeSpec
        public let type: NodeType
        public let options: NodeOptions
        /// What this node sends, after its inputs and options are known.
        public let emits: PacketKinds
        /// Indices (into ``PipelineGraph/nodes``) of its inputs, in lane order.
        public let inputs: [Int]
    }

    public let name: String
    public let nodes: [Node]
    /// What was left unchecked because it depends on an unset variable
    /// (``PipelineLoader/allowsUnsetVariables``): one line each.
    public var unchecked: [String] = []

    /// The node with `id`.
    public func node(_ id: String) -> Node? { nodes.first { $0.spec.id == id } }
}

/// Checks a ``PipelineSpec`` against a ``NodeRegistry``. Runs every node
/// type's factory, which decodes options and opens nothing, so validation
/// never touches a file or a socket. Reports every problem it finds.
public struct GraphValidator: Sendable {
    public let registry: NodeRegistry
    /// Leave unchecked what depends on an unset variable's placeholder
    /// (``PipelineLoader/allowsUnsetVariables``); for `camflow validate --allow-unset` only.
    public var allowsPlaceholders = false
    /// The program the hints in errors name (`see 'NAME nodes log'`): a
    /// custom binary's own name, not `camflow`.
    public var commandName = "camflow"

    public init(registry: NodeRegistry) {
        self.registry = registry
    }

    public func validate(_ pipeline: PipelineSpec) throws(ConfigErrors) -> PipelineGraph {
        var errors: [ConfigError] = []
        var unchecked: [String] = []
        var seen: [String: Int] = [:]
        var candidates: [(spec: NodeSpec, type: NodeType, options: NodeOptions, instanceEmits: PacketKinds?)] = []

        for spec in pipeline.nodes {
            if seen[spec.id] != nil {
                errors.append(ConfigError("duplicate node id '\(spec.id)'", at: spec.location))
                continue
            }
            seen[spec.id] = candidates.count
            guard let type = registry[spec.type] else {
                errors.append(ConfigError(
                    "unknown node type '\(spec.type)' (node '\(spec.id)')"
                        + Suggestions.didYouMean(spec.type, among: registry.names),
                    at: spec.typeLocation ?? spec.location,
                    notes: ["note: run '\(commandName) nodes' to list the types"]))
                continue
            }
            let optionErrors = checkOptions(spec, type)
            errors += optionErrors
            let options = NodeOptions(nodeID: spec.id, specs: type.options, values: spec.options,
                                      location: spec.location)
            var instanceEmits: PacketKinds?
            if optionErrors.isEmpty {
                do {
                    instanceEmits = try type.make(options).emittedKinds
                } catch let error as ConfigError {
                    // A value standing in for an unset variable cannot be checked, nor what follows it.
                    // Only an error about the placeholder itself: of that cause, and at its value.
                    if allowsPlaceholders, case .placeholder = error.cause,
                       let placeholder = spec.options.first(where: { $0.value.holdsPlaceholder && $0.value.location == error.location }) {
                        unchecked.append("node '\(spec.id)': option '\(placeholder.key)' and what follows it depend on "
                                         + placeholder.value.placeholderNames.joined(separator: ", "))
                    } else {
                        errors.append(error)
                    }
                } catch {
                    errors.append(ConfigError("node '\(spec.id)' (\(type.name)): \(error)", at: spec.location))
                }
            }
            candidates.append((spec, type, options, instanceEmits))
        }

        // Inputs exist and fit the node's role.
        let ids = candidates.map(\.spec.id)
        for candidate in candidates {
            let spec = candidate.spec
            if candidate.type.isSource, !spec.inputs.isEmpty {
                errors.append(ConfigError(
                    "node '\(spec.id)' is a source (\(spec.type)) and takes no inputs",
                    at: spec.inputLocations.first ?? spec.location))
            }
            if !candidate.type.isSource, spec.inputs.isEmpty {
                let role = candidate.type.isSink ? "a sink" : "a transform"
                errors.append(ConfigError(
                    "node '\(spec.id)' is \(role) (\(spec.type)) with no input; add 'inputs: [...]'",
                    at: spec.location))
            }
            var listed = Set<String>()
            for (input, location) in zip(spec.inputs, spec.inputLocations) {
                if !listed.insert(input).inserted {
                    errors.append(ConfigError("node '\(spec.id)' lists input '\(input)' twice", at: location))
                } else if input == spec.id {
                    errors.append(ConfigError("node '\(spec.id)' lists itself as an input", at: location))
                } else if seen[input] == nil {
                    errors.append(ConfigError(
                        "input '\(input)' of node '\(spec.id)' is not a node in this pipeline"
                            + Suggestions.didYouMean(input, among: ids),
                        at: location ?? spec.location))
                }
            }
        }
        guard errors.isEmpty else { throw ConfigErrors(errors) }

        // Order nodes after their inputs; a leftover means a cycle.
        let order: [Int]
        switch Self.topologicalOrder(candidates.map { $0.spec.inputs.compactMap { seen[$0] } }) {
        case .success(let sorted): order = sorted
        case .failure(let found):
            let cycle = found.nodes
            let path = (cycle + [cycle[0]]).map { candidates[$0].spec.id }.joined(separator: " -> ")
            let first = candidates[cycle[0]].spec
            let next = candidates[cycle[1 % cycle.count]].spec
            let at = zip(next.inputs, next.inputLocations).first { $0.0 == first.id }?.1 ?? next.location
            throw ConfigErrors([ConfigError("the pipeline has a cycle: \(path)", at: at,
                                            notes: ["note: packets must flow one way; remove one of these inputs"])])
        }

        // Packet kinds along every edge.
        var emitted = [PacketKinds](repeating: [], count: candidates.count)
        var position = [Int](repeating: 0, count: candidates.count)
        for (rank, index) in order.enumerated() { position[index] = rank }
        var nodes: [PipelineGraph.Node] = []
        for index in order {
            let (spec, type, options, instanceEmits) = candidates[index]
            let inputIndices = spec.inputs.compactMap { seen[$0] }
            for (input, location) in zip(inputIndices, spec.inputLocations) {
                let sent = emitted[input]
                let producer = candidates[input].spec
                if candidates[input].type.isSink {
                    errors.append(ConfigError(
                        "input '\(producer.id)' of node '\(spec.id)' is a sink (\(producer.type)) and sends nothing",
                        at: location ?? spec.location))
                } else if sent.intersection(type.accepts).isEmpty {
                    errors.append(ConfigError(
                        "node '\(spec.id)' (\(spec.type)) accepts \(type.accepts) packets, "
                            + "but its input '\(producer.id)' (\(producer.type)) sends \(sent)",
                        at: location ?? spec.location,
                        notes: ["note: put a node that turns \(sent) into \(type.accepts) between them"]))
                }
            }
            switch type.emits {
            case .nothing: emitted[index] = []
            case .kinds(let kinds): emitted[index] = instanceEmits ?? kinds
            case .inputKinds, .inputKindsAnd:
                let fromInputs = inputIndices.reduce(into: PacketKinds()) { $0.formUnion(emitted[$1]) }
                var own = PacketKinds()
                if case .inputKindsAnd(let extra) = type.emits { own = extra }
                emitted[index] = instanceEmits ?? fromInputs.intersection(type.accepts).union(own)
            }
            nodes.append(PipelineGraph.Node(
                spec: spec, type: type, options: options, emits: emitted[index],
                inputs: inputIndices.map { position[$0] }))
        }
        guard errors.isEmpty else { throw ConfigErrors(errors) }
        var graph = PipelineGraph(name: pipeline.name, nodes: nodes)
        graph.unchecked = unchecked
        return graph
    }

    /// Options known to the type, of the declared type, and the required ones set.
    private func checkOptions(_ spec: NodeSpec, _ type: NodeType) -> [ConfigError] {
        var errors: [ConfigError] = []
        let names = type.options.map(\.name)
        for (name, value) in spec.options.sorted(by: { $0.key < $1.key }) {
            guard let option = type.options.first(where: { $0.name == name }) else {
                let known = names.isEmpty ? "it has no options" : "its options are " + names.joined(separator: ", ")
                errors.append(ConfigError(
                    "unknown option '\(name)' for node '\(spec.id)' (\(type.name))"
                        + Suggestions.didYouMean(name, among: names + NodeSpec.commonKeys),
                    at: spec.optionKeyLocations[name] ?? value.location ?? spec.location,
                    notes: ["note: \(known); see '\(commandName) nodes \(type.name)'"]))
                continue
            }
            let unchecked = allowsPlaceholders && value.holdsPlaceholder && value.scalarText != nil
            if !unchecked, let problem = option.type.mismatch(allowsPlaceholders ? value.withoutPlaceholders : value) {
                errors.append(ConfigError("option '\(name)' of node '\(spec.id)' (\(type.name)): \(problem)",
                                          at: value.location ?? spec.location))
            }
        }
        for option in type.options where option.isRequired && spec.options[option.name] == nil {
            errors.append(ConfigError(
                "node '\(spec.id)' (\(type.name)) needs option '\(option.name)': \(option.summary)",
                at: spec.location))
        }
        // Sorted by position so messages read top to bottom.
        return errors.sorted { ($0.location?.line ?? 0, $0.location?.column ?? 0) < ($1.location?.line ?? 0, $1.location?.column ?? 0) }
    }

    /// Kahn's algorithm over `inputs` (each node's input indices). Keeps
    /// file order among independent nodes. On a cycle, returns one cycle.
    static func topologicalOrder(_ inputs: [[Int]]) -> Result<[Int], CycleFound> {
        var remaining = inputs.map(\.count)
        var consumers = [[Int]](repeating: [], count: inputs.count)
        for (node, sources) in inputs.enumerated() { for source in sources { consumers[source].append(node) } }
        // Nodes are taken from the front by a cursor, never removed: `removeFirst` moved the whole
        // queue each time, and 80,000 nodes of included graphs took over a minute.
        var order = remaining.indices.filter { remaining[$0] == 0 }
        var next = 0
        while next < order.count {
            let node = order[next]
            next += 1
            for consumer in consumers[node] {
                remaining[consumer] -= 1
                if remaining[consumer] == 0 { order.append(consumer) }
            }
        }
        if order.count == inputs.count { return .success(order) }
        // Walk inputs among the leftovers until a node repeats.
        let leftover = Set(remaining.indices.filter { remaining[$0] > 0 })
        var path: [Int] = []
        var onPath: Set<Int> = []
        var node = leftover.min()!
        while onPath.insert(node).inserted {
            path.append(node)
            node = inputs[node].first { leftover.contains($0) }!
        }
        let cycle = Array(path[path.firstIndex(of: node)!...])
        // Report in the direction packets flow: producer before consumer.
        return .failure(CycleFound(nodes: Array(cycle.reversed())))
    }

    struct CycleFound: Error {
        var nodes: [Int]
    }
}
