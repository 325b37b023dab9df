/// Decode times for frames that arrive in decode order with presentation
/// times only (RTP): with B-frames the presentation times step back and
/// forth, while a file needs decode times that strictly increase and never
/// pass their frame's presentation time.
///
/// The k-th frame's decode time is the k-th smallest presentation time,
/// moved back by the span of the stream's reorder depth R (the most frames
/// that come before a frame in decode order and after it in presentation
/// order): the same rule an encoder's `ctts` follows. R is learned from the
/// first `learningFrames` frames; afterwards a frame leaves once R + 1 frames
/// follow it (so its duration, the step to the next decode time, is known).
/// Memory is bounded: at most `max(learningFrames, R + 2)` frames are held.
public struct DecodeTimeline<Frame: Sendable>: Sendable {
    /// A frame with its times, in decode order.
    public struct Timed: Sendable {
        public var frame: Frame
        public var pts: Int64
        public var dts: Int64
        public var duration: Int64
    }

    public let learningFrames: Int
    /// The reorder depth, once learned.
    public private(set) var reorder: Int?
    /// Frames whose presentation time came out before their decode time (a
    /// stream that reorders deeper than it did at first): written with a
    /// negative composition offset rather than dropped.
    public private(set) var lateFrames = 0
    private var queue: [(frame: Frame, pts: Int64)] = []
    private var head = 0
    /// Presentation times of the frames held, ascending.
    private var pending: [Int64] = []
    private var shift: Int64 = 0
    private var lastDTS: Int64?
    /// The step between the last two decode times given out (1 before any).
    public private(set) var lastDuration: Int64 = 1

    public init(learningFrames: Int = 8) {
        self.learningFrames = max(2, min(learningFrames, 64))
    }

    /// Frames held, not yet given out.
    public var heldFrames: Int { queue.count - head }

    /// Takes the next frame in decode order; gives out the frames whose times are now known.
    public mutating func push(_ frame: Frame, pts: Int64) -> [Timed] {
        queue.append((frame, pts))
        let index = pending.firstIndex { $0 > pts } ?? pending.count
        pending.insert(pts, at: index)
        if reorder == nil {
            guard heldFrames >= learningFrames else { return [] }
            learn()
        }
        var out: [Timed] = []
        while let reorder, heldFrames >= reorder + 2 { out.append(next(final: false)) }
        return out
    }

    /// Gives out every frame held (end of stream, or before a new sequence).
    public mutating func flush() -> [Timed] {
        if reorder == nil, heldFrames > 0 { learn() }
        var out: [Timed] = []
        while heldFrames > 0 { out.append(next(final: true)) }
        return out
    }

    private mutating func learn() {
        let held = queue[head...].map(\.pts)
        var depth = 0
        for (k, pts) in held.enumerated() {
            depth = max(depth, held[..<k].reduce(0) { $0 + ($1 > pts ? 1 : 0) })
        }
        depth = min(depth, held.count - 1)
        reorder = depth
        shift = pending[depth] - pending[0]
    }

    private mutating func next(final: Bool) -> Timed {
        let (frame, pts) = queue[head]
        head += 1
        if head > 64 {
            queue.removeFirst(head)
            head = 0
        }
        let smallest = pending.removeFirst()
        var dts = smallest - shift
        if let lastDTS, dts <= lastDTS { dts = lastDTS + 1 }
        var duration = lastDuration
        if let following = pending.first {
            duration = max(following - shift - dts, 1)
        } else if !final {
            duration = lastDuration
        }
        if pts < dts { lateFrames += 1 }
        lastDTS = dts
        lastDuration = duration
        return Timed(frame: frame, pts: pts, dts: dts, duration: duration)
    }
}
