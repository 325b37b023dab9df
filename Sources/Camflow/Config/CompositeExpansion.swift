import Foundation

/// Composite nodes: a `type: graph` node stands for the nodes of another
/// pipeline file, expanded while loading, before the validator sees them.
extension PipelineLoader {
    /// Replaces every `type: graph` node by the nodes of its file, ids prefixed
    /// with the composite's id and a dot; its inputs feed the graph's `input`
    /// node, and its consumers read the graph's `output` node.
    func expandComposites(_ spec: PipelineSpec, includedFrom: [String],
                                  includeChain: [String], budget: IncludeBudget) throws(ConfigErrors) -> PipelineSpec {
        guard spec.nodes.contains(where: { $0.type == GraphNode.type.name }) else { return spec }
        var errors: [ConfigError] = []
        var moreErrors = 0
        var expanded: [NodeSpec] = []
        var outputs: [String: String] = [:]
        let directory = spec.file.map { file -> String in
            guard let slash = file.lastIndex(of: "/") else { return "" }
            return String(file[...slash])
        } ?? ""
        for node in spec.nodes {
            guard node.type == GraphNode.type.name else {
                expanded.append(node)
                continue
            }
            let known = GraphNode.type.options.map(\.name)
            for (key, value) in node.options where !known.contains(key) {
                errors.append(ConfigError("unknown option '\(key)' for composite node '\(node.id)'; expected "
                                            + known.joined(separator: " or ") + Suggestions.didYouMean(key, among: known),
                                          at: node.optionKeyLocations[key] ?? value.location ?? node.location))
            }
            guard let relative = node.options["file"]?.scalarText else {
                errors.append(ConfigError("composite node '\(node.id)' needs 'file': the graph to include", at: node.location))
                continue
            }
            let path = relative.hasPrefix("/") ? relative : directory + relative
            let site = node.options["file"]?.location ?? node.location
            let siteText = site.map { "\($0.file):\($0.line):\($0.column) (node '\(node.id)')" } ?? "node '\(node.id)'"
            // Compared as standardized paths: `./self.yaml` is the file itself too.
            let standardized = (path as NSString).standardizingPath
            guard !includeChain.contains(where: { ($0 as NSString).standardizingPath == standardized }) else {
                errors.append(ConfigError("composite node '\(node.id)' includes '\(path)', which includes itself",
                                          at: site))
                continue
            }
            budget.loads += 1
            guard budget.loads <= IncludeBudget.maxLoads else {
                // First: of all the errors it ends, the one that says why the others stop.
                throw ConfigErrors([ConfigError(
                    "composite node '\(node.id)': the pipeline includes more than \(IncludeBudget.maxLoads) graphs in all",
                    at: site)] + errors, more: moreErrors)
            }
            var parameters = environment
            if let params = node.options["params"] {
                guard case .map(let pairs) = params.content else {
                    errors.append(ConfigError("'params' of composite node '\(node.id)' is a mapping of names to values",
                                              at: params.location ?? node.location))
                    continue
                }
                var valid = true
                for (key, value) in pairs {
                    guard let text = value.scalarText else {
                        errors.append(ConfigError("'params.\(key)' of composite node '\(node.id)' must be a single value, not \(value.shapeName)",
                                                  at: value.location ?? params.location ?? node.location))
                        valid = false
                        continue
                    }
                    parameters[key] = text
                }
                guard valid else { continue }
            }
            let source: PipelineSource
            do {
                source = try readSource(path)
            } catch {
                // The reader's own errors say why (too large, not a regular file); others are the system's.
                let reason = (error as? ConfigError).map { ": \($0.message)" } ?? ": \(error)"
                errors.append(ConfigError("cannot read '\(path)', included by composite node '\(node.id)'\(reason)", at: site))
                continue
            }
            var loader = PipelineLoader(environment: parameters, readSource: readSource)
            loader.commandName = commandName
            let graph: PipelineSpec
            do {
                graph = try loader.load(source, file: path, includedFrom: [siteText] + includedFrom,
                                        includeChain: includeChain + [path], budget: budget)
            } catch {
                errors += error.errors
                moreErrors += error.more
                continue
            }
            guard let output = graph.output, graph.nodes.contains(where: { $0.id == output }) else {
                errors.append(ConfigError("'\(path)' must name its 'output' node to be used as a composite node", at: site))
                continue
            }
            if !node.inputs.isEmpty, graph.input.map({ id in graph.nodes.contains { $0.id == id } }) != true {
                errors.append(ConfigError("'\(path)' must name its 'input' node: composite node '\(node.id)' has inputs",
                                          at: site))
                continue
            }
            let prefix = node.id + "."
            for var inner in graph.nodes {
                let innerID = inner.id
                inner.id = prefix + innerID
                inner.inputs = inner.inputs.map { prefix + $0 }
                if innerID == graph.input {
                    inner.inputs += node.inputs
                    inner.inputLocations += node.inputLocations
                }
                inner.groups = [node.id] + inner.groups.map { prefix + $0 }
                expanded.append(inner)
            }
            outputs[node.id] = prefix + output
        }
        guard errors.isEmpty else { throw ConfigErrors(errors, more: moreErrors) }
        // Consumers of a composite read its output node.
        for index in expanded.indices {
            expanded[index].inputs = expanded[index].inputs.map { outputs[$0] ?? $0 }
        }
        var result = spec
        result.nodes = expanded
        return result
    }
}
