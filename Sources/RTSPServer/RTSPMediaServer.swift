public import Camflow
public import Logging
public import NIOCore

/// An RTSP/1.0 server over SwiftNIO that serves each published stream as
/// `rtsp://HOST:PORT/{stream}` (tracks `/{stream}/trackID=N`). Media comes
/// in as fMP4: an init segment, then `moof`+`mdat` fragments, exactly as
/// `mp4-parse` emits them; it is packetized once per stream and the same
/// RTP packets go to every client. The engine's packets are not needed:
/// the `rtsp` node and the simulator both feed it.
public final class RTSPMediaServer: Sendable {
    public let configuration: RTSPServerConfiguration
    let clock: any PipelineClock
    let logger: Logger

    public init(configuration: RTSPServerConfiguration, clock: any PipelineClock = SystemClock(),
                logger: Logger = Logger(label: "camflow.rtsp")) {
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
    }

    /// Listens on `host:port` (port 0: an ephemeral one) and returns the bound port.
    public func start(host: String, port: Int) async throws -> Int {
        throw RTSPMediaError("not implemented")
    }

    /// Takes a stream's init segment (ftyp + moov); a new one is a discontinuity
    /// (a camera reconnected): timestamps continue, clients are kept.
    public func publish(stream: String, initSegment: ByteBuffer) throws(RTSPMediaError) {}

    /// Takes one fragment (moof + mdat) of a stream whose init segment came before.
    /// `keyframe`: the fragment starts with a video keyframe.
    public func publish(stream: String, fragment: ByteBuffer, keyframe: Bool) throws(RTSPMediaError) {}

    /// The stream has ended: its clients are disconnected and its cache dropped.
    public func end(stream: String) {}

    /// Stops listening and closes every connection.
    public func shutdown() async {}
}
