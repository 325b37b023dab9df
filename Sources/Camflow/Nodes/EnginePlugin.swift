/// The node types built into the engine: `queue`, `log` and `null`.
public enum EnginePlugin: CamflowPlugin {
    public static let name = "engine"
    public static var nodeTypes: [NodeType] { [QueueNode.type, LogNode.type, NullNode.type] }
}
