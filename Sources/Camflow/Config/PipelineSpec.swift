/// What to do when a node fails.
public struct RestartPolicy: Sendable, Equatable {
    public enum Mode: String, Sendable, CaseIterable {
        /// A failure stops the pipeline with an error.
        case never
        /// Start a new instance after a backoff, up to `maxRestarts` times.
        case onFailure = "on-failure"
    }

    public var mode: Mode
    /// Restarts allowed before the failure stops the pipeline; nil: unlimited.
    public var maxRestarts: Int?
    /// The first wait; doubled after each failure up to `maxBackoff`.
    public var backoff: Duration
    public var maxBackoff: Duration
    /// A run at least this long was healthy: the failure that ends it counts
    /// as the first again, so a node that fails once a day is not given up
    /// on after `maxRestarts` days.
    public var resetAfter: Duration

    public init(mode: Mode, maxRestarts: Int? = 5, backoff: Duration = .milliseconds(500),
                maxBackoff: Duration = .seconds(30), resetAfter: Duration = .seconds(600)) {
        self.mode = mode
        self.maxRestarts = maxRestarts
        self.backoff = backoff
        self.maxBackoff = maxBackoff
        self.resetAfter = resetAfter
    }

    public static let never = RestartPolicy(mode: .never)

    /// The wait before restart number `attempt` (1-based).
    public func delay(beforeAttempt attempt: Int) -> Duration {
        var delay = backoff
        // Doubling from 1 ns passes any maximum within 64 steps; a zero backoff stays zero. Either
        // way the loop is bounded, not as long as the count of restarts (unlimited ones grow without end).
        guard delay > .zero else { return min(delay, maxBackoff) }
        for _ in 1..<min(max(attempt, 1), 65) {
            delay = delay * 2
            if delay >= maxBackoff { return maxBackoff }
        }
        return min(delay, maxBackoff)
    }
}

/// One node as declared in a pipeline file, before its type is looked up.
public struct NodeSpec: Sendable {
    public var id: String
    public var type: String
    /// Ids of the nodes feeding this one, in the order written.
    public var inputs: [String]
    public var restart: RestartPolicy
    /// Capacity of each edge into this node, in packets.
    public var capacity: Int
    /// The type-specific options, by name.
    public var options: [String: OptionValue]
    /// The composite nodes this node came from, outermost first (empty for a node of the file itself).
    public var groups: [String] = []

    /// Where the id is written.
    public var location: SourceLocation?
    public var typeLocation: SourceLocation?
    /// Where each input is written, parallel to `inputs`.
    public var inputLocations: [SourceLocation?]
    /// Where each option's key is written.
    public var optionKeyLocations: [String: SourceLocation]

    public init(id: String, type: String, inputs: [String] = [], restart: RestartPolicy = .never,
                capacity: Int = NodeSpec.defaultCapacity, options: [String: OptionValue] = [:]) {
        self.id = id
        self.type = type
        self.inputs = inputs
        self.restart = restart
        self.capacity = capacity
        self.options = options
        self.inputLocations = inputs.map { _ in nil }
        self.optionKeyLocations = [:]
    }

    /// Packets an edge holds unless a node says otherwise: small, so a slow
    /// stage slows its producers quickly instead of hiding latency.
    public static let defaultCapacity = 16
    /// The most packets an edge may be given to hold.
    public static let maxCapacity = 1 << 20

    /// Keys every node has, whatever its type.
    static let commonKeys = ["type", "inputs", "restart", "capacity"]
}

/// A pipeline as declared: a name and nodes in file order.
public struct PipelineSpec: Sendable {
    public var name: String
    /// The file it came from, as the user named it; nil when built in code.
    public var file: String?
    public var nodes: [NodeSpec]
    /// For a graph used as a composite node: the node that takes the composite's inputs.
    public var input: String?
    /// For a graph used as a composite node: the node whose output is the composite's.
    public var output: String?

    public init(name: String, file: String? = nil, nodes: [NodeSpec]) {
        self.name = name
        self.file = file
        self.nodes = nodes
    }
}
