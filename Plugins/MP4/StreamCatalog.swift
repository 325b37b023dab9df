import Camflow
import ISOBMFF
import NIOCore

/// What a downstream node knows of one stream: its latest init segment,
/// read from `init` packets, so `fragment` and `frame` packets can be
/// interpreted without the parser's state. Nodes keep one per stream in a
/// bounded ``StreamTable``.
struct StreamMedia {
    private(set) var initSegment: InitSegment?

    /// Reads an init packet. Returns the parse error, if any.
    mutating func update(with packet: Packet) -> ParseError? {
        do {
            initSegment = try InitSegment(parsing: packet.payload)
            return nil
        } catch {
            return error
        }
    }

    func track(_ id: UInt32) -> Track? { initSegment?.track(id) }

    /// The samples of a fragment packet, when the stream's init segment is known.
    func fragment(_ packet: Packet) throws(ParseError) -> Fragment? {
        guard let initSegment else { return nil }
        return try Fragment(parsing: packet.payload, initSegment: initSegment)
    }
}

extension VideoDecoderConfiguration {
    /// The NAL summary of a frame payload in either form: length-prefixed
    /// (as stored in MP4) or Annex B (after `annexb: true`).
    func summarizeAnyForm(_ payload: ByteBuffer) -> NALSummary? {
        if let summary = try? summarize(payload) { return summary }
        let annexB = summarizeAnnexB(payload)
        return annexB.count > 0 ? annexB : nil
    }
}

extension Event {
    /// The event for a parse problem: code, message, offset and box path.
    static func parseError(_ error: ParseError, node: String) -> Event {
        Event("parse-error", [
            ("node", .string(node)), ("code", .string(error.code.rawValue)), ("message", .string(error.message)),
            ("offset", .int(error.offset)), ("path", .string(error.path)),
        ])
    }
}

extension Track {
    /// What the track carries, as a frame packet says it.
    var kind: TrackKind? {
        isVideo ? .video : isAudio ? .audio : nil
    }
}
