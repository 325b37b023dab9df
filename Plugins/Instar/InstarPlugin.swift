public import Camflow

/// The INSTAR camera family: the `instar-camera` source; `CameraSimulator`
/// serves the same protocol for tests and demos.
public enum InstarPlugin: CamflowPlugin {
    public static let name = "instar"
    public static var nodeTypes: [NodeType] { [InstarCamera.type, InstarAlarm.type] }
}
