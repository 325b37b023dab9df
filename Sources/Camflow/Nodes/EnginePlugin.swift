/// The node types built into the engine: `queue`, `log`, `null`,
/// `pipeline-events`, and `graph` (composite nodes).
public enum EnginePlugin: CamflowPlugin {
    public static let name = "engine"
    public static var nodeTypes: [NodeType] { [QueueNode.type, LogNode.type, NullNode.type, PipelineEventsNode.type, GraphNode.type] }
}
