import Camflow
import NIOCore

/// The decisions of `event-record` for one stream, as a value tested
/// without tasks or files: which fragments to hold for the pre-roll, when a
/// trigger starts a clip (at the latest keyframe at or before trigger −
/// pre-roll), how later triggers extend it, and where it ends. Times are
/// media seconds; ``EventRecord`` carries out the actions.
struct ClipBuffer {
    struct Fragment {
        var packet: Packet
        var start: Double
        var end: Double
        var keyframe: Bool
        /// When the fragment's bytes arrived (monotonic nanoseconds): maps a trigger's arrival to media time.
        var arrival: UInt64
        var bytes: Int { packet.payload.readableBytes }
    }

    /// The clip being made.
    struct Clip: Equatable {
        var start: Double
        var end: Double
        var firstTrigger: Double
        var lastTrigger: Double
        /// Write until a fragment starts at or after this.
        var until: Double
        var reason: String
        var triggers: Int
        /// When the clip's first fragment arrived: max-clip holds in arrival time too, whatever the timestamps do.
        var startArrival: UInt64
    }

    enum Action {
        /// Open a clip and write these fragments (the pre-roll).
        case start(Clip, [Fragment])
        /// Append a fragment to the open clip.
        case write(Fragment)
        /// Finish the open clip.
        case finish(Clip)
        /// Say once that a GOP is longer than the pre-roll (seconds).
        case longGOP(Double)
        /// The pre-roll buffer hit its byte limit and dropped its oldest GOP.
        case bufferFull
    }

    /// How far a fragment may start before the one held last without counting as a step back (B-frame reordering, jitter).
    static let backwardTolerance = 1.0

    let preRoll: Double
    let postRoll: Double
    let maxClip: Double
    let maxBytes: Int
    private(set) var held: [Fragment] = []
    private(set) var heldBytes = 0
    private(set) var clip: Clip?
    private var warnedLongGOP = false
    private var lastKeyframeStart: Double?

    init(preRoll: Double, postRoll: Double, maxClip: Double, maxBytes: Int) {
        self.preRoll = preRoll
        self.postRoll = postRoll
        self.maxClip = maxClip
        self.maxBytes = maxBytes
    }

    /// A new init segment (or a reconnection): what is held belongs to the
    /// old one, so it goes, and an open clip ends.
    mutating func reset() -> [Action] {
        held = []
        heldBytes = 0
        lastKeyframeStart = nil
        return finishClip()
    }

    mutating func fragment(_ fragment: Fragment) -> [Action] {
        var actions: [Action] = []
        // Timestamps that step back (a camera's clock reset, a hostile sender) start over:
        // what is held and an open clip belong to the old timeline.
        if let previous = held.last?.start ?? clip?.end, fragment.start < previous - Self.backwardTolerance {
            actions += reset()
        }
        if fragment.keyframe {
            if let previous = lastKeyframeStart, fragment.start - previous > preRoll, !warnedLongGOP {
                warnedLongGOP = true
                actions.append(.longGOP(fragment.start - previous))
            }
            lastKeyframeStart = fragment.start
        }
        if var clip {
            let elapsed = Double(Int64(bitPattern: fragment.arrival &- clip.startArrival)) / 1e9
            if fragment.start >= clip.until || fragment.end - clip.start > maxClip || elapsed > maxClip {
                actions += finishClip()
            } else {
                clip.end = max(clip.end, fragment.end)
                self.clip = clip
                actions.append(.write(fragment))
            }
        }
        // Held only from a keyframe on: a clip must start with one.
        if fragment.keyframe || !held.isEmpty {
            held.append(fragment)
            heldBytes += fragment.bytes
            actions += trim()
        }
        return actions
    }

    /// A trigger that arrived at `arrival` (monotonic nanoseconds).
    mutating func trigger(arrival: UInt64, reason: String) -> [Action] {
        guard let last = held.last else { return [] }  // nothing to record yet
        // The trigger's moment in media time: the newest fragment's end plus the time since it arrived.
        let time = last.end + Double(Int64(bitPattern: arrival &- last.arrival)) / 1e9
        if var clip {
            clip.lastTrigger = max(clip.lastTrigger, time)
            clip.until = max(clip.until, time + postRoll)
            clip.triggers += 1
            self.clip = clip
            return []
        }
        let wanted = time - preRoll
        // The latest keyframe at or before trigger − pre-roll; the earliest held when none reaches back that far.
        let startIndex = held.indices.last { held[$0].keyframe && held[$0].start <= wanted } ?? held.indices.first { held[$0].keyframe }
        guard let startIndex else { return [] }
        let fragments = Array(held[startIndex...])
        let clip = Clip(start: held[startIndex].start, end: fragments.last?.end ?? held[startIndex].end, firstTrigger: time,
                        lastTrigger: time, until: time + postRoll, reason: reason, triggers: 1, startArrival: held[startIndex].arrival)
        self.clip = clip
        return [.start(clip, fragments)]
    }

    /// Ends the open clip now (the stream or the pipeline ended).
    mutating func finishClip() -> [Action] {
        guard let clip else { return [] }
        self.clip = nil
        return [.finish(clip)]
    }

    /// Keeps whole GOPs from the latest keyframe that still covers a pre-roll
    /// before the newest fragment; past `maxBytes`, drops the oldest GOPs.
    private mutating func trim() -> [Action] {
        guard let end = held.last?.end else { return [] }
        if let keep = held.indices.last(where: { held[$0].keyframe && held[$0].start <= end - preRoll }), keep > 0 {
            drop(first: keep)
        }
        guard heldBytes > maxBytes else { return [] }
        while heldBytes > maxBytes {
            if let next = held.indices.dropFirst().first(where: { held[$0].keyframe }) {
                drop(first: next)
            } else {
                // One GOP larger than the buffer (or keyframes that stopped coming): hold nothing until the next keyframe.
                held = []
                heldBytes = 0
            }
        }
        return [.bufferFull]
    }

    private mutating func drop(first count: Int) {
        heldBytes -= held[..<count].reduce(0) { $0 + $1.bytes }
        held.removeFirst(count)
    }
}
