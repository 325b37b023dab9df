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

    /// Called with each track's first decode time (ns, its own clock) in a fragment, before its samples are placed:
    /// on a new init segment, or when a track's time is not where it was expected, the whole fragment moves so
    /// that its earliest sample lands where the stream had reached, for every track at once. `live`: where
    /// the wall clock says the stream is now (sender reports' relation), with `fragmentEnd` the fragment's own
    /// end (ns): a fragment that comes after a pause (an outage, a file starting over late) is placed there,
    /// so RTP time keeps pace with the wall clock instead of drifting from it at each discontinuity.
    mutating func begin(firstDecodeTimes firsts: [(track: Int, dts: Int64)], fragmentEnd: Int64? = nil, live: Int64? = nil) {
        guard let earliest = firsts.map(\.dts).min() else { return }
        let jumped = firsts.contains { first in
            guard let next = expected[first.track] else { return false }
            let placed = first.dts &+ offset
            return placed > next &+ maxStep || placed < next &- maxStepBack
        }
        guard rebaseNext || jumped else { return }
        if rebaseNext, expected.isEmpty, end == 0, discontinuities == 0, offset == 0 {
            offset = -earliest
        } else {
            offset = end &- earliest
            if let live, let fragmentEnd { offset = max(offset, live &- fragmentEnd) }
            discontinuities += 1
        }
        rebaseNext = false
    }

    /// A sample's times on the timeline (ns): decode and presentation.
    mutating func place(track: Int, dts: Int64, pts: Int64, duration: Int64, timescale: UInt32) -> (dts: Int64, pts: Int64) {
        let placedDTS = Self.nanoseconds(dts, timescale) &+ offset
        let placedPTS = Self.nanoseconds(pts, timescale) &+ offset
        let length = max(Self.nanoseconds(duration, timescale), 0)
        expected[track] = placedDTS &+ length
        // Where a rebase continues: past every decode time so far. (Presentation times would add a B-frame
        // stream's reordering delay at each discontinuity, and RTP time would drift ahead of the wall clock.)
        end = max(end, placedDTS &+ length)
        return (placedDTS, placedPTS)
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
