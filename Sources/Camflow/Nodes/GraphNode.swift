/// `graph`: a composite node, standing for the nodes of another pipeline
/// file. The loader expands it before validation (see
/// `CompositeExpansion.swift`), so it never runs; it is registered so that
/// `camflow nodes graph` documents it and its options are declared once.
enum GraphNode {
    static let type = NodeType(
        name: "graph",
        summary: "A composite node: the nodes of another pipeline file, included as one node.",
        details: """
            The included file names its 'input' node (fed by this node's inputs) and its 'output' \
            node (what this node's consumers read). Its nodes get ids prefixed with this node's id \
            and a dot ('front.parse'), and its ${VAR} references are filled from 'params', then from \
            the environment. A file may not include itself; at most 256 graphs are read for one \
            pipeline, includes of includes counted.
            """,
        options: [
            OptionSpec("file", .string, required: true,
                       "The pipeline file to include, relative to the including file's directory."),
            OptionSpec("params", .mapping, "Values for the included file's ${VAR} references."),
        ],
        accepts: .all,
        emits: .inputKinds,
        make: { options in
            throw options.error("is expanded when the pipeline is loaded; it never runs on its own")
        })
}
