import Camflow
import ISOBMFF
import NIOCore

/// `mp4-parse`: turns a byte stream into init segments, fragments and,
/// optionally, one packet per sample.
struct MP4Parse: PacketProcessor {
    static let type = NodeType(
        name: "mp4-parse",
        summary: "Parses a fragmented MP4 byte stream into init, fragment and (optionally) frame packets.",
        details: """
            Keeps one parser per stream. Boxes are cut out of the input without copying when they \
            arrive within one packet. With 'frames' it also emits one frame packet per sample, audio \
            and video, carrying dts/pts/duration/keyframe/codec; a fragment's frames come before the \
            fragment itself. A packet flagged as a discontinuity (reconnect, dropped bytes) makes the \
            parser drop what it had and resynchronise on the next init segment or moof. Parse \
            problems become 'parse-error' events and parsing carries on. Event packets pass through.
            """,
        options: [
            OptionSpec("frames", .bool, default: "false", "Also emit one frame packet per sample."),
            OptionSpec("emit", .list(.choice(["init", "fragment", "frame"])),
                       "Which packets to emit; default init and fragment, plus frame with 'frames'."),
            OptionSpec("annexb", .bool, default: "false",
                       "Convert video frames to Annex B (start codes; parameter sets before each keyframe)."),
            OptionSpec("max-box-size", .size, default: "64MiB", min: "1KiB",
                       "Largest box (or moof + mdat) buffered or skipped; a larger size is taken for corruption: reported, and the parser looks for the next box."),
            OptionSpec("max-samples", .integer, default: "65536", min: "1",
                       "Most samples one fragment may declare across its truns; more is reported as corruption."),
            .maxStreams(),
        ],
        accepts: [.bytes, .event],
        emits: .kinds([.initSegment, .fragment, .event]),
        make: { options in
            var kinds: PacketKinds = [.initSegment, .fragment]
            if try options.bool("frames") { kinds.insert(.frame) }
            if let listed = try options.ifSet("emit", options.stringList) {
                kinds = PacketKinds(listed.compactMap(PacketKind.init(name:)).map(PacketKinds.init))
            }
            return MP4Parse(kinds: kinds, annexB: try options.bool("annexb"),
                            parser: .init(maxBoxSize: try options.size("max-box-size"),
                                          maxSamplesPerFragment: try options.integer("max-samples")),
                            maxStreams: try options.maxStreams())
        })

    let kinds: PacketKinds
    let annexB: Bool
    let parser: StreamingParser.Configuration
    private var streams: StreamTable<StreamState>

    init(kinds: PacketKinds, annexB: Bool, parser: StreamingParser.Configuration, maxStreams: Int) {
        self.kinds = kinds
        self.annexB = annexB
        self.parser = parser
        self.streams = StreamTable(capacity: maxStreams)
    }

    var emittedKinds: PacketKinds? { kinds.union(.event) }

    /// One stream's parser and counters.
    private struct StreamState {
        var parser: StreamingParser
        var sequences: [PacketKind: UInt64] = [:]
        var afterGap = false
        var skippedTypes: Set<FourCC> = []

        mutating func nextSequence(_ kind: PacketKind) -> UInt64 {
            defer { sequences[kind, default: 0] += 1 }
            return sequences[kind, default: 0]
        }
    }

    mutating func process(_ packet: Packet, _ context: NodeContext) async throws {
        guard packet.kind == .bytes else {
            await context.emit(packet)
            return
        }
        var state = streams.take(packet.stream) ?? StreamState(parser: StreamingParser(configuration: parser))
        if packet.discontinuity {
            state.parser.resynchronize()
            state.afterGap = true
        }
        state.parser.append(packet.payload)
        while true {
            do {
                guard let item = try state.parser.next() else { break }
                await emit(item, from: packet, state: &state, context)
            } catch {
                await reportError(error, stream: packet.stream, state: &state, context)
            }
        }
        if let evicted = streams.put(state, for: packet.stream) {
            await context.reportEvicted(stream: evicted.stream, capacity: streams.capacity)
        }
    }

    mutating func finish(_ context: NodeContext) async throws {
        for stream in streams.streams {
            guard var state = streams.take(stream) else { continue }
            do {
                try state.parser.finish()
            } catch {
                await reportError(error, stream: stream, state: &state, context)
            }
        }
    }

    private func reportError(_ error: ParseError, stream: String, state: inout StreamState,
                             _ context: NodeContext) async {
        context.logger.warning("parse error in stream \(stream): \(error)")
        context.stats.countDropped()
        await context.emit(.event(.parseError(error, node: context.id), stream: stream,
                                  sequence: state.nextSequence(.event)))
    }

    private func emit(_ item: StreamingParser.Item, from packet: Packet, state: inout StreamState,
                      _ context: NodeContext) async {
        switch item {
        case .initSegment(let segment):
            guard kinds.contains(.initSegment) else { return }
            let video = segment.tracks.first(where: \.isVideo)
            let media = MediaInfo(track: video?.id ?? 0, codec: segment.tracks.compactMap(\.codec).joined(separator: ", "),
                                  timescale: video?.timescale ?? 0, width: video?.width, height: video?.height)
            await context.emit(Packet(kind: .initSegment, stream: packet.stream, sequence: state.nextSequence(.initSegment),
                                      payload: segment.bytes, receivedAt: packet.receivedAt,
                                      discontinuity: take(&state.afterGap), media: media))
        case .fragment(let fragment):
            guard let initSegment = state.parser.initSegment else { return }
            var gap = take(&state.afterGap)
            if kinds.contains(.frame) {
                // Tracks are read in place: a Track copied per sample retains its whole configuration.
                let tracks = initSegment.tracks
                for sample in fragment.samples {
                    guard let index = tracks.firstIndex(where: { $0.id == sample.track }) else { continue }
                    var payload = fragment.data(of: sample)
                    if annexB, let video = tracks[index].video {
                        do {
                            payload = try video.annexB(payload, withParameterSets: sample.isSync)
                        } catch {
                            await reportError(error, stream: packet.stream, state: &state, context)
                            continue
                        }
                    }
                    await context.emit(Packet(
                        kind: .frame, stream: packet.stream, sequence: state.nextSequence(.frame), payload: payload,
                        receivedAt: packet.receivedAt, discontinuity: gap,
                        media: MediaInfo(track: sample.track, codec: tracks[index].codec, timescale: tracks[index].timescale,
                                         dts: sample.dts, pts: sample.pts, duration: Int64(sample.duration),
                                         keyframe: sample.isSync, width: tracks[index].width, height: tracks[index].height,
                                         trackKind: tracks[index].kind)))
                    gap = false
                }
            }
            guard kinds.contains(.fragment) else { return }
            let lead = fragment.samples.first { initSegment.track($0.track)?.isVideo == true } ?? fragment.samples.first
            let track = lead.flatMap { initSegment.track($0.track) }
            let duration = fragment.samples.reduce(Int64(0)) { $0 + ($1.track == lead?.track ? Int64($1.duration) : 0) }
            await context.emit(Packet(
                kind: .fragment, stream: packet.stream, sequence: state.nextSequence(.fragment), payload: fragment.bytes,
                receivedAt: packet.receivedAt, discontinuity: gap,
                media: MediaInfo(track: lead?.track ?? 0, codec: track?.codec, timescale: track?.timescale ?? 0,
                                 dts: lead?.dts, pts: lead?.pts, duration: duration, keyframe: lead?.isSync,
                                 width: track?.width, height: track?.height, trackKind: track?.kind)))
        case .skipped(let type, let size, let offset):
            if state.skippedTypes.insert(type).inserted, ![FourCC.free, .skip, .mdat, .styp, .sidx].contains(type) {
                context.logger.debug("skipping box '\(type)' (\(size) bytes at \(offset)) in stream \(packet.stream)")
            }
        }
    }

    private func take(_ flag: inout Bool) -> Bool {
        defer { flag = false }
        return flag
    }
}
