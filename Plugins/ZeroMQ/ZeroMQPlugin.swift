public import Camflow

/// ZeroMQ nodes over libzmq: `zmq-publish` and `zmq-subscribe`; `ZMQBroker`
/// forwards between many publishers and subscribers.
public enum ZeroMQPlugin: CamflowPlugin {
    public static let name = "zeromq"
    public static var nodeTypes: [NodeType] { [ZMQPublish.type, ZMQSubscribe.type] }
}
