import Camflow
import ISOBMFF
import NIOCore

/// Cuts a wall-clock range out of recordings, one file after another, into
/// one standalone fragmented MP4: the first file's init segment, then
/// fragments that start at the keyframe at or before the range's start and
/// stop at its end (to the frame), with decode times made continuous
/// across files. A value fed parsed boxes, tested without I/O.
///
/// A frame's wall-clock time is its file's `wall_start` plus its media time
/// since the file's first frame.
struct ClipCutter {
    enum Failure: Error, Equatable, CustomStringConvertible {
        /// A group of pictures longer than the buffer allows, while seeking the start.
        case gopTooLarge(Int)

        var description: String {
            switch self {
            case .gopTooLarge(let bytes): "a group of pictures holds more than \(bytes) bytes"
            }
        }
    }

    let start: Double
    let end: Double
    /// Bytes held while seeking the start: one GOP.
    let maxGOPBytes: Int
    /// The output is complete: the range's end was reached, or a file's
    /// init segment differs from the first one's (another picture size).
    private(set) var done = false
    private(set) var wroteInit = false

    private var firstInit: ByteBuffer?
    private var initSegment: InitSegment?
    private var timeline: Track?
    private var fileWallStart = 0.0
    /// Media seconds of the file's first timeline frame.
    private var fileOrigin: Double?
    private var fileStarted = false
    /// Output ticks minus input ticks, per track.
    private var shift: [UInt32: Int64] = [:]
    /// Where the last file's timeline ended: input (media seconds) and output (ticks).
    private var lastInputEnd: Double?
    private var outputEnd: Int64 = 0
    /// The wall-clock time of the clip's first frame, once chosen.
    private var clipStart: Double?
    /// Frames from the latest keyframe at or before `start`, while seeking it.
    private var held: [WritableSample] = []
    private var heldBytes = 0
    private var sequence: UInt32 = 1

    init(start: Double, end: Double, maxGOPBytes: Int = 256 << 20) {
        self.start = start
        self.end = end
        self.maxGOPBytes = maxGOPBytes
    }

    /// The next file, begun at `wallStart`.
    mutating func beginFile(wallStart: Double) {
        fileWallStart = wallStart
        fileOrigin = nil
        fileStarted = false
    }

    /// A file's init segment; the first is written out.
    mutating func take(initSegment bytes: ByteBuffer, parsed: InitSegment) -> ByteBuffer? {
        guard !done else { return nil }
        if let firstInit {
            if firstInit != bytes { done = true }
            return nil
        }
        firstInit = bytes
        initSegment = parsed
        timeline = parsed.tracks.first(where: \.isVideo) ?? parsed.tracks.first
        return nil
    }

    /// A fragment of the current file; returns what to write (the init
    /// segment before the first fragment written).
    mutating func take(fragment: Fragment) throws(Failure) -> [ByteBuffer] {
        guard !done, let timeline, let initSegment, timeline.timescale > 0 else { return [] }
        let scale = Double(timeline.timescale)
        var out: [WritableSample] = []
        // Timeline frames first, so other tracks (audio) are judged by the frames around them.
        let ordered = fragment.samples.filter { $0.track == timeline.id } + fragment.samples.filter { $0.track != timeline.id }
        var timelineEnded = false
        for sample in ordered {
            guard let trackScale = initSegment.track(sample.track)?.timescale, trackScale > 0 else { continue }
            let media = Double(sample.dts) / Double(trackScale)
            if sample.track == timeline.id, fileOrigin == nil {
                fileOrigin = media
                // A new file continues the last one's decode times when its media time does; otherwise it is joined on.
                if let lastInputEnd, clipStart != nil, abs(media - lastInputEnd) > 1 {
                    for track in initSegment.tracks {
                        let offset = Double(outputEnd) / scale - media
                        shift[track.id] = Int64((offset * Double(track.timescale)).rounded())
                    }
                }
            }
            guard let origin = fileOrigin else { continue } // audio before the first frame of the file
            let wall = fileWallStart + media - origin
            var writable = WritableSample(sample, of: fragment)
            if sample.track == timeline.id {
                if wall >= end { timelineEnded = true; continue }
                if clipStart == nil {
                    if writable.isSync, wall <= start || held.isEmpty {
                        if wall <= start {
                            held = [writable] // a later keyframe at or before the start replaces the GOP held
                            heldBytes = writable.data.readableBytes
                            continue
                        }
                        clipStart = wall // no keyframe at or before the start: begin at the first after it
                    } else if held.isEmpty {
                        continue
                    } else if wall > start {
                        clipStart = fileWallStart + Double(held[0].dts) / scale - origin
                    } else {
                        held.append(writable)
                        heldBytes += writable.data.readableBytes
                        guard heldBytes <= maxGOPBytes else { throw .gopTooLarge(maxGOPBytes) }
                        continue
                    }
                } else if !fileStarted, !writable.isSync {
                    continue // a file joined on starts at a keyframe
                }
                fileStarted = true
            } else {
                guard let clipStart, fileStarted, wall >= clipStart, wall < end else {
                    if clipStart == nil, let first = held.first, wall >= fileWallStart + Double(first.dts) / scale - origin {
                        held.append(writable)
                    }
                    continue
                }
            }
            if shift.isEmpty, let first = held.first ?? (sample.track == timeline.id ? writable : nil) {
                let origin = Double(first.dts) / scale
                for track in initSegment.tracks { shift[track.id] = -Int64((origin * Double(track.timescale)).rounded()) }
            }
            if !held.isEmpty {
                out += held.map { shifted($0) }
                held.removeAll()
                heldBytes = 0
            }
            writable = shifted(writable)
            out.append(writable)
            if sample.track == timeline.id { outputEnd = writable.dts + Int64(writable.duration) }
        }
        if let last = fragment.samples.last(where: { $0.track == timeline.id }) {
            lastInputEnd = Double(last.dts + Int64(last.duration)) / scale
        }
        if timelineEnded { done = true }
        var buffers: [ByteBuffer] = []
        let timelineOut = out.filter { $0.track == timeline.id }
        guard !timelineOut.isEmpty || !out.isEmpty else { return [] }
        if !wroteInit, let firstInit {
            guard timelineOut.first?.isSync == true else { return [] }
            buffers.append(firstInit)
            wroteInit = true
        }
        if let bytes = FragmentWriter.fragment(sequenceNumber: sequence, samples: timelineOut + out.filter { $0.track != timeline.id }) {
            sequence &+= 1
            buffers.append(bytes)
        }
        return buffers
    }

    private func shifted(_ sample: WritableSample) -> WritableSample {
        var moved = sample
        let offset = shift[sample.track] ?? 0
        moved.dts = sample.dts &+ offset
        moved.pts = sample.pts &+ offset
        return moved
    }
}
