/// What a node type sends downstream.
public enum Emission: Sendable, Equatable {
    /// A sink: nothing.
    case nothing
    /// These kinds.
    case kinds(PacketKinds)
    /// Whatever its inputs send (queues, filters).
    case inputKinds
    /// Whatever its inputs send, and these kinds of its own (e.g. events).
    case inputKindsAnd(PacketKinds)
}

/// A node type as a plugin registers it under a YAML `type:` name: what it
/// is, its documented options, the packet kinds it takes and gives, and a
/// factory.
///
/// The factory only decodes and checks options: it opens no file or socket
/// (that happens in ``Node/run(_:)``), so `camflow validate` can call it.
public struct NodeType: Sendable {
    /// The YAML `type:` name, kebab-case.
    public var name: String
    /// One line for `camflow nodes`.
    public var summary: String
    /// Longer text for `camflow nodes TYPE`, optional.
    public var details: String?
    public var options: [OptionSpec]
    /// Kinds it takes; empty for a source.
    public var accepts: PacketKinds
    public var emits: Emission
    /// A source whose readiness is a connection it reports through
    /// ``NodeStats/setConnected(_:)`` (a camera): until it reports one it
    /// counts as not ready.
    public var reportsConnection: Bool
    /// The node makes blocking system calls (file reads and writes, fsync,
    /// directory scans, writes to a pipe that may be slow): the scheduler
    /// runs it on a thread of its own (``BlockingIOThread``), so a slow disk
    /// stalls that node alone, never Swift's shared cooperative threads and
    /// with them the cameras, the web server or ZeroMQ.
    public var performsBlockingIO: Bool
    /// Builds a node from checked options.
    public var make: @Sendable (NodeOptions) throws -> any Node

    public init(
        name: String, summary: String, details: String? = nil, options: [OptionSpec] = [],
        accepts: PacketKinds, emits: Emission, reportsConnection: Bool = false, performsBlockingIO: Bool = false,
        make: @escaping @Sendable (NodeOptions) throws -> any Node
    ) {
        self.reportsConnection = reportsConnection
        self.performsBlockingIO = performsBlockingIO
        self.name = name
        self.summary = summary
        self.details = details
        self.options = options
        self.accepts = accepts
        self.emits = emits
        self.make = make
    }

    /// A source takes no inputs.
    public var isSource: Bool { accepts.isEmpty }
    /// A sink sends nothing.
    public var isSink: Bool { emits == .nothing }

    /// The role in words, for listings.
    public var role: String { isSource ? "source" : isSink ? "sink" : "transform" }
}

/// A module of node types: one plugin per node family (`Plugins/Files`,
/// `Plugins/MP4`, ...). The CLI composes a list of plugins; a custom binary
/// passes a longer one.
public protocol CamflowPlugin: SendableMetatype {
    /// Short name of the family, such as `files`.
    static var name: String { get }
    /// The node types it registers.
    static var nodeTypes: [NodeType] { get }
}

/// Every node type the running binary knows, by name.
public struct NodeRegistry: Sendable {
    /// Types in registration order.
    public private(set) var types: [NodeType] = []
    private var byName: [String: Int] = [:]

    /// A registry of the engine's own nodes plus `plugins`, in that order.
    /// A later plugin may not reuse a name; the first registration wins and
    /// the clash is reported in ``conflicts``.
    public init(plugins: [any CamflowPlugin.Type]) {
        for type in EnginePlugin.nodeTypes { register(type, from: EnginePlugin.name) }
        for plugin in plugins {
            for type in plugin.nodeTypes { register(type, from: plugin.name) }
        }
    }

    /// Names registered twice, with the plugin that lost.
    public private(set) var conflicts: [String] = []

    /// Adds one type; a name already taken is reported in ``conflicts``.
    public mutating func register(_ type: NodeType, from plugin: String = "custom") {
        guard byName[type.name] == nil else {
            conflicts.append("node type '\(type.name)' from plugin '\(plugin)' is already registered")
            return
        }
        byName[type.name] = types.count
        types.append(type)
    }

    /// The type registered under `name`.
    public subscript(name: String) -> NodeType? { byName[name].map { types[$0] } }

    /// Registered names that look like a misspelling of `name`, best first.
    public func closestNames(to name: String) -> [String] {
        Suggestions.closest(to: name, among: names)
    }

    /// Names sorted for listings.
    public var names: [String] { types.map(\.name).sorted() }
}
