/// What became of an emitted packet, as GStreamer's flow return tells a
/// pad's pusher: a node learns from ``NodeContext/emit(_:)`` that nobody
/// reads its output any more, and stops producing for nothing.
public enum Flow: Sendable, Equatable {
    /// Sent to the consumers that accept it (or none accepted its kind).
    case accepted
    /// Every consumer of this output has gone for good (failed, removed):
    /// the packet was dropped, and so will every later one be. A source
    /// stops reading; the pipeline stops it anyway.
    case downstreamEnded
}
