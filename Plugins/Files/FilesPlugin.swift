public import Camflow

/// File nodes: `file-replay` and `file-record`.
public enum FilesPlugin: CamflowPlugin {
    public static let name = "files"
    public static var nodeTypes: [NodeType] { [FileReplay.type, FileRecord.type, EventRecord.type] }
}
