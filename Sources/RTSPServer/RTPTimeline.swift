/// Maps the decode and presentation times of a stream's samples (each
/// track in its own timescale) onto one continuous media timeline in
/// nanoseconds, then onto each track's RTP clock. Across a discontinuity
/// (a looped file starting over, a camera that reconnected with a new init
/// segment, a jump of more than `maxStep`) the timeline continues where
/// the stream's tracks had reached, for all tracks at once, so that audio
/// and video stay together and RTP timestamps never jump back.
struct RTPTimeline: Sendable, Equatable {
    /// Larger steps forward between a track's consecutive decode times are a discontinuity (a shorter gap,
    /// such as a camera's dropout, is kept: it happened).
    var maxStep: Int64 = 5_000_000_000
    /// Decode times never go back; more than this (rounding of durations aside) is a discontinuity.
    var maxStepBack: Int64 = 500_000_000
    /// Added to every sample's own time (ns).
    private(set) var offset: Int64 = 0
    /// Per track: where its next sample is expected on the timeline (ns).
    private var expected: [Int: Int64] = [:]
    /// The furthest any track reached: where a rebase continues.
    private(set) var end: Int64 = 0
    private var rebaseNext = true
    /// Discontinuities bridged so far.
    private(set) var discontinuities = 0

    /// The next sample starts a new timeline (a new init segment).
    mutating func restart() {
        rebaseNext = true
        expected.removeAll()
    }

    /// A sample's times on the timeline (ns): decode and presentation.
    mutating func place(track: Int, dts: Int64, pts: Int64, duration: Int64, timescale: UInt32) -> (dts: Int64, pts: Int64) {
        let ownDTS = Self.nanoseconds(dts, timescale)
        let ownPTS = Self.nanoseconds(pts, timescale)
        let length = Self.nanoseconds(duration, timescale)
        if rebaseNext {
            if expected.isEmpty && end == 0 && discontinuities == 0 && offset == 0 {
                offset = -ownDTS
            } else {
                offset = end &- ownDTS
                discontinuities += 1
            }
            rebaseNext = false
        } else if let next = expected[track] {
            let placed = ownDTS &+ offset
            if placed > next &+ maxStep || placed < next &- maxStepBack {
                offset = max(end, next) &- ownDTS
                discontinuities += 1
            }
        }
        let placedDTS = ownDTS &+ offset
        let next = placedDTS &+ max(length, 0)
        expected[track] = next
        end = max(end, next)
        return (placedDTS, ownPTS &+ offset)
    }

    /// `ticks` of `timescale` in nanoseconds, without overflow for any time a stream reaches.
    static func nanoseconds(_ ticks: Int64, _ timescale: UInt32) -> Int64 {
        guard timescale > 0 else { return 0 }
        let scale = Int64(timescale)
        let (seconds, rest) = ticks.quotientAndRemainder(dividingBy: scale)
        return seconds &* 1_000_000_000 &+ rest * 1_000_000_000 / scale
    }

    /// A timeline time (ns) on an RTP clock of `rate` Hz, from the track's random `base`.
    static func rtpTime(_ nanoseconds: Int64, rate: Int, base: UInt32) -> UInt32 {
        let (seconds, rest) = nanoseconds.quotientAndRemainder(dividingBy: 1_000_000_000)
        let ticks = seconds &* Int64(rate) &+ rest * Int64(rate) / 1_000_000_000
        return base &+ UInt32(truncatingIfNeeded: ticks)
    }
}
