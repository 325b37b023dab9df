public import Camflow

/// RTSP in and out: the `rtsp` server node, which serves every stream that
/// reaches it as `rtsp://HOST:PORT/{stream}`, and the `rtsp-camera` source,
/// which pulls any RTSP camera into a pipeline.
public enum RTSPPlugin: CamflowPlugin {
    public static let name = "rtsp"
    public static var nodeTypes: [NodeType] { [RTSPNode.type, RTSPCamera.type] }
}
