import Camflow
import NIOCore
import Synchronization

/// The server's streams and who plays each, under one lock. The publisher
/// packetizes under it (once per fragment, for everyone) and hands the
/// packets to each client after releasing it; clients only ever queue them
/// on their own event loop, so the publisher never waits for a client.
final class StreamHub: Sendable {
    struct Entry: Sendable {
        var media: MediaStream
        var clients: [Int: ClientOutput] = [:]
    }

    /// What a player starts with: each track's first sequence number and RTP time, and the packets of the current GOP.
    struct Start: Sendable {
        var tracks: [Int: (sequence: UInt16, timestamp: UInt32)]
        var gop: [RTPOut]
    }

    private let state: Mutex<StreamTable<Entry>>
    let mtu: Int
    let gopLimit: Int

    init(maxStreams: Int, mtu: Int, gopLimit: Int) {
        state = Mutex(StreamTable(capacity: maxStreams))
        self.mtu = mtu
        self.gopLimit = gopLimit
    }

    /// Takes an init segment; returns the clients to disconnect (the stream
    /// changed under them, or an evicted stream's).
    func publish(stream: String, initSegment: ByteBuffer) throws(RTSPMediaError) -> [ClientOutput] {
        var random = SystemRandomNumberGenerator()
        let result: Result<[ClientOutput], RTSPMediaError> = state.withLock { table in
            var entry = table.take(stream) ?? Entry(media: MediaStream(name: stream, mtu: mtu, gopLimit: gopLimit))
            var dropped: [ClientOutput] = []
            do throws(RTSPMediaError) {
                if try entry.media.take(initSegment: initSegment, random: &random) {
                    dropped = Array(entry.clients.values)
                    entry.clients = [:]
                }
            } catch {
                if entry.media.initSegment != nil { table.put(entry, for: stream) }
                return .failure(error)
            }
            if let evicted = table.put(entry, for: stream) { dropped += evicted.value.clients.values }
            return .success(dropped)
        }
        return try result.get()
    }

    /// Takes a fragment; returns its packets and the clients to give them to.
    func publish(stream: String, fragment: ByteBuffer, now: ContinuousClock.Instant) throws(RTSPMediaError)
        -> (packets: RTPBatch, clients: [ClientOutput])
    {
        let result: Result<(RTPBatch, [ClientOutput]), RTSPMediaError> = state.withLock { table in
            guard var entry = table.take(stream) else {
                return .failure(RTSPMediaError("stream '\(stream)': a fragment before any init segment"))
            }
            defer { table.put(entry, for: stream) }
            do throws(RTSPMediaError) {
                let packets = try entry.media.take(fragment: fragment, now: now)
                return .success((RTPBatch(packets: packets, joined: entry.media.lastBatch), Array(entry.clients.values)))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Forgets a stream; returns its clients, to be disconnected.
    func end(stream: String) -> [ClientOutput] {
        state.withLock { table in table.take(stream).map { Array($0.clients.values) } ?? [] }
    }

    /// Every client of every stream (shutdown).
    func removeAll() -> [ClientOutput] {
        state.withLock { table in
            var all: [ClientOutput] = []
            for name in table.streams { if let entry = table.take(name) { all += entry.clients.values } }
            return all
        }
    }

    /// The SDP of a stream; `.notReady` while a track's parameters are unknown (in-band ones before a keyframe).
    enum Description: Sendable {
        case sdp(String)
        case notReady
        case unknown
    }

    func describe(stream: String, origin: String) -> Description {
        state.withLock { table in
            guard let media = table[stream]?.media else { return .unknown }
            return media.sessionDescription(origin: origin).map { .sdp($0) } ?? .notReady
        }
    }

    func isVideo(stream: String, track: Int) -> Bool {
        state.withLock { table in
            guard let tracks = table[stream]?.media.tracks, tracks.indices.contains(track) else { return false }
            return tracks[track].isVideo
        }
    }

    func trackCount(stream: String) -> Int? {
        state.withLock { $0[stream]?.media.tracks.count }
    }

    /// The SSRC of a stream's track (for SETUP's Transport answer).
    func ssrc(stream: String, track: Int) -> UInt32? {
        state.withLock { table in
            guard let tracks = table[stream]?.media.tracks, tracks.indices.contains(track) else { return nil }
            return tracks[track].ssrc
        }
    }

    /// Registers `client` as a player of `stream`, atomically with what it starts from (no packet lost or doubled).
    func join(stream: String, client: ClientOutput, tracks: [Int]) -> Start? {
        state.withLock { table in
            guard var entry = table.take(stream) else { return nil }
            defer { table.put(entry, for: stream) }
            var starts: [Int: (UInt16, UInt32)] = [:]
            for track in tracks { starts[track] = entry.media.startOf(track: track) }
            entry.clients[client.id] = client
            return Start(tracks: starts, gop: entry.media.gop.items)
        }
    }

    func leave(stream: String, client: Int) {
        state.withLock { table in
            guard var entry = table.take(stream) else { return }
            entry.clients[client] = nil
            table.put(entry, for: stream)
        }
    }

    /// Sender reports due now: per stream, per track, the report and the clients to send it to.
    func senderReports(now: ContinuousClock.Instant, wallNow: Double) -> [(track: Int, report: ByteBuffer, clients: [ClientOutput])] {
        state.withLock { table in
            var out: [(Int, ByteBuffer, [ClientOutput])] = []
            for name in table.streams {
                guard let entry = table[name], !entry.clients.isEmpty else { continue }
                for (index, track) in entry.media.tracks.enumerated() {
                    guard let rtpTime = entry.media.rtpTime(track: index, at: now) else { continue }
                    let report = SenderReport(ssrc: track.ssrc, wallTime: wallNow, rtpTime: rtpTime,
                                              packets: track.packetCount, octets: track.octetCount)
                    out.append((index, report.bytes, Array(entry.clients.values)))
                }
            }
            return out
        }
    }

    /// Per stream: players, and the bytes of its GOP cache (metrics).
    func snapshot() -> [(stream: String, clients: [ClientOutput], gopBytes: Int, fragments: UInt64)] {
        state.withLock { table in
            table.streams.compactMap { name in
                table[name].map { (name, Array($0.clients.values), $0.media.gop.bytes, $0.media.fragments) }
            }
        }
    }
}
