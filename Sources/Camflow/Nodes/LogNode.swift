/// `log`: one line per packet on standard output, as text or JSON lines.
struct LogNode: PacketProcessor {
    enum Format: String, CaseIterable { case text, json }

    static let type = NodeType(
        name: "log",
        summary: "Prints one line per packet to standard output (text or JSON lines).",
        details: """
            Text lines read 'stream kind #sequence bytes [keyframe] [dts= pts= dur=] [codec]'; \
            event packets print their name and fields. JSON lines are the ZeroMQ message header \
            (stream, kind, sequence, codec, timescale, dts, pts, duration, keyframe, width, height, \
            track, track_kind, received_at_ns; event and fields for events) plus 'bytes'.
            """,
        options: [
            OptionSpec("format", .choice(Format.allCases.map(\.rawValue)), default: "text", "Line format."),
            OptionSpec("every", .integer, default: "1", min: "1", "Print one packet in N (per node)."),
            OptionSpec("prefix", .string, "Text put before every text line, such as the node id."),
        ],
        accepts: .all,
        emits: .nothing, performsBlockingIO: true,
        make: { options in
            LogNode(format: try options.choice("format"), every: try options.integer("every"),
                    prefix: try options.ifSet("prefix", options.string))
        })

    let format: Format
    let every: Int
    let prefix: String?
    private var seen = 0

    init(format: Format, every: Int, prefix: String?) {
        self.format = format
        self.every = every
        self.prefix = prefix
    }

    mutating func process(_ packet: Packet, _ context: NodeContext) async throws {
        defer { seen += 1 }
        guard seen % every == 0 else { return }
        var line = format == .json ? Self.json(packet) : Self.text(packet)
        if format == .text, let prefix { line = prefix + " " + line }
        line += "\n"
        // One write per line: a reader of a pipe sees each packet as it passes.
        try OutputStream.standardOutput.write(line)
    }

    /// Characters of one event field's value printed at most.
    static let maxValueCharacters = 1024

    static func text(_ packet: Packet) -> String {
        // Streams, codecs and event fields may come from a peer (an MQTT payload, a camera's text):
        // escaped, so none can forge a line or drive the terminal reading this output.
        var parts = [UntrustedText.printable(packet.stream), packet.kind.name, "#\(packet.sequence)",
                     "\(packet.payload.readableBytes)B"]
        if packet.discontinuity { parts.append("discontinuity") }
        if let media = packet.media {
            if media.keyframe == true { parts.append("keyframe") }
            if media.track != 0 { parts.append("track=\(media.track)") }
            if let dts = media.dts { parts.append("dts=\(dts)") }
            if let pts = media.pts { parts.append("pts=\(pts)") }
            if let duration = media.duration { parts.append("dur=\(duration)") }
            if media.timescale != 0 { parts.append("timescale=\(media.timescale)") }
            if let codec = media.codec { parts.append(UntrustedText.printable(codec)) }
            if let width = media.width, let height = media.height { parts.append("\(width)x\(height)") }
        }
        if let event = packet.event {
            parts.append(UntrustedText.printable(event.name))
            for (key, value) in event.fields {
                parts.append(UntrustedText.printable(key) + "=" + UntrustedText.printable("\(value)", limit: Self.maxValueCharacters))
            }
        }
        return parts.joined(separator: " ")
    }

    /// The packet header (as published over ZeroMQ) plus the payload size.
    static func json(_ packet: Packet) -> String {
        PacketHeader.json(packet) { $0.append("bytes", Int64(packet.payload.readableBytes)) }
    }
}

/// `null`: counts what arrives and discards it.
struct NullNode: Node {
    static let type = NodeType(
        name: "null",
        summary: "Counts packets and discards them.",
        accepts: .all,
        emits: .nothing,
        make: { _ in NullNode() })

    func run(_ context: NodeContext) async throws {
        for await _ in context.input {}
    }
}
