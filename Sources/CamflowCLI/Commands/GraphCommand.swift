import ArgumentParser
import Camflow

/// `camflow graph FILE`: the pipeline as a Mermaid or Graphviz diagram.
struct GraphCommand: ParsableCommand {
    enum Format: String, ExpressibleByArgument, CaseIterable { case mermaid, dot }

    static let configuration = CommandConfiguration(
        commandName: "graph",
        abstract: "Print a pipeline as a Mermaid or Graphviz (dot) diagram.",
        discussion: "Nodes show their id and type; edges the packet kinds they carry; composite nodes are clusters. No option values are shown, so no credential is.")

    @Argument(help: "The pipeline file (YAML).")
    var file: String

    @Option(help: "mermaid or dot.")
    var format: Format = .mermaid

    func run() throws {
        let graph = try PipelineFile.load(file, registry: CommandEnvironment.registry)
        print(GraphDiagram(graph: graph).render(format == .dot ? .dot : .mermaid))
    }
}

/// Draws a checked graph. Labels come from ids, types and packet kinds only.
struct GraphDiagram {
    enum Format { case mermaid, dot }
    let graph: PipelineGraph

    func render(_ format: Format) -> String {
        var lines: [String] = []
        switch format {
        case .mermaid:
            lines.append("flowchart LR")
            for (group, members) in groups() {
                if let group { lines.append("    subgraph \(identifier(group))[\"\(group)\"]") }
                for node in members {
                    lines.append("    \(group == nil ? "" : "    ")\(identifier(node.spec.id))[\"\(node.spec.id)<br/><small>\(node.type.name)</small>\"]")
                }
                if group != nil { lines.append("    end") }
            }
            for node in graph.nodes {
                for input in node.inputs {
                    let producer = graph.nodes[input]
                    let kinds = producer.emits.intersection(node.type.accepts)
                    lines.append("    \(identifier(producer.spec.id)) -->|\(kinds)| \(identifier(node.spec.id))")
                }
            }
        case .dot:
            lines.append("digraph \"\(graph.name)\" {")
            lines.append("    rankdir=LR;")
            lines.append("    node [shape=box, fontname=\"Helvetica\"];")
            for (group, members) in groups() {
                if let group { lines.append("    subgraph \"cluster_\(group)\" { label=\"\(group)\"; style=rounded;") }
                for node in members {
                    let shape = node.type.isSource ? ", shape=invhouse" : node.type.isSink ? ", shape=house" : ""
                    lines.append("    \(group == nil ? "" : "    ")\"\(node.spec.id)\" [label=\"\(node.spec.id)\\n\(node.type.name)\"\(shape)];")
                }
                if group != nil { lines.append("    }") }
            }
            for node in graph.nodes {
                for input in node.inputs {
                    let producer = graph.nodes[input]
                    let kinds = producer.emits.intersection(node.type.accepts)
                    lines.append("    \"\(producer.spec.id)\" -> \"\(node.spec.id)\" [label=\"\(kinds)\"];")
                }
            }
            lines.append("}")
        }
        return lines.joined(separator: "\n")
    }

    /// Nodes by the composite node they came from (nil: the file's own), in file order.
    private func groups() -> [(String?, [PipelineGraph.Node])] {
        var order: [String?] = []
        var members: [String?: [PipelineGraph.Node]] = [:]
        for node in graph.nodes {
            let group = node.spec.groups.last.map { _ in node.spec.groups.joined(separator: ".") }
            if members[group] == nil { order.append(group) }
            members[group, default: []].append(node)
        }
        return order.map { ($0, members[$0] ?? []) }
    }

    /// Mermaid ids may not hold '-'.
    private func identifier(_ id: String) -> String {
        "n_" + id.map { $0.isLetter || $0.isNumber ? String($0) : "_" }.joined()
    }
}
