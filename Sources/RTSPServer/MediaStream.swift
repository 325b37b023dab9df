import ISOBMFF
import MediaCache
import NIOCore
import RTP
import RTSPProtocol

/// One served stream as a value: its tracks, the RTP packets of its current
/// GOP for joiners, and the timeline its samples are placed on. It turns
/// each fragment into RTP packets once, for every client.
struct MediaStream: Sendable {
    let name: String
    let mtu: Int
    private(set) var initSegment: InitSegment?
    private(set) var tracks: [TrackSender] = []
    private(set) var timeline = RTPTimeline()
    private(set) var gop: GOPBuffer<RTPOut>
    /// `o=`'s session id; changes when the layout does.
    private(set) var sdpVersion: UInt64 = 0
    /// A timeline time (ns) and the instant it was live: sender reports extrapolate from it (see `reanchor`).
    private(set) var anchor: (timeline: Int64, at: ContinuousClock.Instant)?
    private(set) var fragments: UInt64 = 0
    /// The latest fragment's packets end to end, as TCP clients on the default channels are written them.
    private(set) var lastBatch = ByteBuffer()
    private(set) var badSamples: UInt64 = 0

    init(name: String, mtu: Int, gopLimit: Int) {
        self.name = name
        self.mtu = mtu
        gop = GOPBuffer(limit: gopLimit)
    }

    var hasVideo: Bool { tracks.contains { $0.isVideo } }
    var layout: [String] { tracks.map(\.layout) }

    /// Takes an init segment; returns whether the tracks changed in a way
    /// a client's decoders cannot follow (their clients must reconnect).
    mutating func take(initSegment bytes: ByteBuffer, random: inout some RandomNumberGenerator) throws(RTSPMediaError) -> Bool {
        let parsed: InitSegment
        do { parsed = try InitSegment(parsing: bytes) } catch {
            throw RTSPMediaError("stream '\(name)': unreadable init segment: \(error)")
        }
        return try take(initSegment: parsed, random: &random)
    }

    /// ``take(initSegment:random:)`` of an init segment already read.
    mutating func take(initSegment parsed: InitSegment, random: inout some RandomNumberGenerator) throws(RTSPMediaError) -> Bool {
        var fresh: [TrackSender] = []
        for track in parsed.tracks {
            guard fresh.count < 8, var sender = TrackSender(track: track, mtu: mtu, random: &random) else { continue }
            if let old = tracks.first(where: { $0.layout == sender.layout && $0.isVideo == sender.isVideo }) {
                // RTP numbering continues across a new init segment of the same kind.
                sender = sender.continuing(old)
            }
            fresh.append(sender)
        }
        guard !fresh.isEmpty else {
            throw RTSPMediaError("stream '\(name)': no track served over RTP (H.264, H.265 or AAC) in its init segment")
        }
        let changed = !tracks.isEmpty && fresh.map(\.layout) != layout
        if tracks.isEmpty || changed { sdpVersion = random.next() >> 1 }
        tracks = fresh
        initSegment = parsed
        timeline.restart()
        // The cached GOP stays a valid start for joiners while the layout holds (its packets are numbered and
        // carry their parameter sets); a joiner right after a looped file's init segment still starts at once.
        if changed { gop.clear() }
        return changed
    }

    /// The session description for DESCRIBE, nil until every track's parameters are known.
    func sessionDescription(origin: String) -> String? {
        var media: [SDPMedia] = []
        for (index, track) in tracks.enumerated() {
            guard let section = track.sdpMedia(control: "trackID=\(index)") else { return nil }
            media.append(section)
        }
        return SessionDescription(name: name, originAddress: origin, sessionID: sdpVersion, media: media).text
    }

    /// The packets of one fragment, in decode order across tracks; also kept for joiners.
    mutating func take(fragment bytes: ByteBuffer, now: ContinuousClock.Instant) throws(RTSPMediaError) -> [RTPOut] {
        guard let initSegment else { throw RTSPMediaError("stream '\(name)': a fragment before any init segment") }
        let fragment: Fragment
        do { fragment = try Fragment(parsing: bytes, initSegment: initSegment) } catch {
            throw RTSPMediaError("stream '\(name)': unreadable fragment: \(error)")
        }
        fragments &+= 1
        var firsts: [(track: Int, dts: Int64)] = []
        var ownEnd = Int64.min
        for sample in fragment.samples {
            guard let index = tracks.firstIndex(where: { $0.mp4TrackID == sample.track }) else { continue }
            let scale = tracks[index].timescale
            ownEnd = max(ownEnd, RTPTimeline.nanoseconds(sample.dts &+ Int64(sample.duration), scale))
            guard !firsts.contains(where: { $0.track == index }) else { continue }
            firsts.append((index, RTPTimeline.nanoseconds(sample.dts, scale)))
        }
        timeline.begin(firstDecodeTimes: firsts, fragmentEnd: ownEnd, live: live(at: now))
        var placed: [(track: Int, sample: Sample, dts: Int64, pts: Int64)] = []
        placed.reserveCapacity(fragment.samples.count)
        for sample in fragment.samples {
            guard let index = tracks.firstIndex(where: { $0.mp4TrackID == sample.track }) else { continue }
            let times = timeline.place(track: index, dts: sample.dts, pts: sample.pts, duration: Int64(sample.duration),
                                       timescale: tracks[index].timescale)
            placed.append((index, sample, times.dts, times.pts))
        }
        placed.sort { $0.dts < $1.dts }
        var out: [RTPOut] = []
        out.reserveCapacity(placed.count * 2)
        // Every packet of the fragment goes into one buffer (each RTPOut a slice of it): a client that takes the
        // whole stream on the default channels is written the fragment in one write.
        var batch = ByteBuffer()
        batch.reserveCapacity(bytes.readableBytes + bytes.readableBytes / 32 + 256)
        var spans: [Int] = []
        let video = hasVideo
        var first = true
        for entry in placed {
            let startsGOP = video ? (tracks[entry.track].isVideo && entry.sample.isSync) : first
            let before = out.count, written = batch.writerIndex
            do {
                try packetize(fragment.data(of: entry.sample), track: entry.track, pts: entry.pts, sync: entry.sample.isSync,
                              into: &out, batch: &batch, spans: &spans)
            } catch {
                badSamples &+= 1
                out.removeSubrange(before...)
                spans.removeSubrange(before...)
                batch.moveWriterIndex(to: written)
                continue
            }
            if startsGOP, out.count > before { out[before].startsGOP = true }
            first = false
        }
        var start = batch.readerIndex
        for index in out.indices {
            out[index].framed = batch.getSlice(at: start, length: spans[index]) ?? ByteBuffer()
            start += spans[index]
        }
        lastBatch = batch
        for packet in out { gop.append(packet, size: packet.size, startsGOP: packet.startsGOP) }
        reanchor(now: now)
        return out
    }

    private mutating func packetize(_ data: ByteBuffer, track index: Int, pts: Int64, sync: Bool,
                                    into out: inout [RTPOut], batch: inout ByteBuffer, spans: inout [Int]) throws(RTPError) {
        var track = tracks[index]
        defer { tracks[index] = track }
        let timestamp = RTPTimeline.rtpTime(pts, rate: track.clockRate, base: track.base)
        let payloads: [RTPPayload]
        switch track.payload {
        case .video(let packetizer, let codec):
            var units = try packetizer.nalUnits(of: data)
            if sync {
                let inBand = TrackSender.parameterSets(in: units, codec: codec)
                if inBand.isEmpty {
                    units = track.parameterSets + units
                } else if track.parameterSets.isEmpty {
                    track.parameterSets = inBand
                }
            }
            payloads = try packetizer.packetize(nalUnits: units)
        case .aac(let packetizer, _):
            payloads = try packetizer.packetize(accessUnits: [data])
        }
        for payload in payloads {
            let header = RTPHeader(marker: payload.marker, payloadType: track.payloadType, sequenceNumber: track.sequence,
                                   timestamp: timestamp &+ payload.timestampOffset, ssrc: track.ssrc)
            let written = batch.writerIndex
            _ = RTSPInterleaved.writeHeader(channel: UInt8(2 * index), length: 12 + payload.count, into: &batch)
            try header.write(to: &batch)
            payload.write(to: &batch)
            spans.append(batch.writerIndex - written)
            out.append(RTPOut(track: index, framed: ByteBuffer(), startsGOP: false, sequence: track.sequence, timestamp: header.timestamp,
                              time: pts))
            track.sequence &+= 1
            track.packetCount &+= 1
            track.octetCount &+= UInt32(truncatingIfNeeded: payload.count)
        }
    }

    /// Sender reports map RTP time to wall time with one fixed relation, set by the first fragment: players
    /// take every report as it is, so a mapping that wobbled with each fragment's arrival would make their
    /// timestamps jump. Only when the stream has strayed from it by more than `maxDrift` (a source
    /// slower or faster than real time) is it set again.
    private mutating func reanchor(now: ContinuousClock.Instant) {
        if let predicted = live(at: now), abs(predicted &- timeline.end) <= Self.maxDrift { return }
        anchor = (timeline.end, now)
    }

    /// How far the stream may stray from the sender reports' relation before it is set again (a jump for players).
    static let maxDrift: Int64 = 3_000_000_000

    /// Where the sender reports' relation puts the stream at `now` (ns on the timeline).
    func live(at now: ContinuousClock.Instant) -> Int64? {
        guard let anchor else { return nil }
        let elapsed = anchor.at.duration(to: now)
        return anchor.timeline &+ elapsed.components.seconds &* 1_000_000_000 &+ elapsed.components.attoseconds / 1_000_000_000
    }

    /// Where a track's RTP clock is at `now`, from the latest fragment (sender reports).
    func rtpTime(track index: Int, at now: ContinuousClock.Instant) -> UInt32? {
        guard let position = live(at: now), tracks.indices.contains(index) else { return nil }
        return RTPTimeline.rtpTime(position, rate: tracks[index].clockRate, base: tracks[index].base)
    }

    /// What a joiner's PLAY answer says per track: the sequence number of the first packet it will be sent, and
    /// the RTP time of the instant it starts at, one instant for every track (the GOP's keyframe, or now), so
    /// that a player lines the tracks up before any sender report.
    func startOf(track index: Int) -> (sequence: UInt16, timestamp: UInt32)? {
        guard tracks.indices.contains(index) else { return nil }
        let instant = gop.items.first?.time ?? timeline.end
        let sequence = gop.items.first(where: { $0.track == index })?.sequence ?? tracks[index].sequence
        return (sequence, RTPTimeline.rtpTime(instant, rate: tracks[index].clockRate, base: tracks[index].base))
    }
}

extension TrackSender {
    /// This sender with `old`'s RTP identity and numbering, so a client sees one continuous RTP stream.
    func continuing(_ old: TrackSender) -> TrackSender {
        var copy = self
        copy.adopt(old)
        return copy
    }
}
