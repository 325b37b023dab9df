public import Camflow

/// Nodes that serve streams and status over HTTP and WebSocket.
public enum WebPlugin: CamflowPlugin {
    public static let name = "web"
    public static var nodeTypes: [NodeType] { [WebSink.type] }
}
