public import Camflow

/// MP4 nodes: `mp4-parse`, `keyframes`, `stats`.
public enum MP4Plugin: CamflowPlugin {
    public static let name = "mp4"
    public static var nodeTypes: [NodeType] { [MP4Parse.type, Keyframes.type, Stats.type] }
}
