/// Puts received RTP packets back in sequence order: 16-bit sequence
/// numbers unwrapped to 64 bits, up to `window` packets held behind a gap,
/// the gap declared lost when the window overflows (or at `flush()`), late
/// and duplicated packets dropped and counted. A number far off either way
/// (more than `maxDropout` ahead or `maxMisorder` behind) is put on
/// probation as RFC 3550 does: if its successor comes next, the sender
/// restarted its sequence; that is reported and the extended numbers carry
/// on without a jump.
public struct RTPSequenceTracker: Sendable {
    /// What one packet released.
    public enum Event: Sendable, Equatable {
        /// The next packet in order, with its extended sequence number.
        case packet(RTPPacket, extendedSequence: UInt64)
        /// Packets that never came: `count` extended numbers from `first`.
        case lost(first: UInt64, count: UInt64)
        /// The sender's sequence restarted: numbering continues from here.
        case restarted(extendedSequence: UInt64)
    }

    /// Counters of what was received and what went missing.
    public struct Statistics: Sendable, Equatable {
        public var received = 0
        public var lost: UInt64 = 0
        /// Packets that came after their place was passed (released or declared lost).
        public var late = 0
        public var duplicates = 0
        public var restarts = 0
        /// Packets far off the sequence that no successor confirmed.
        public var strays = 0
        public init() {}
    }

    /// Packets held at most while waiting for a missing one.
    public let window: Int
    /// A jump ahead larger than this is not a loss (RFC 3550's MAX_DROPOUT).
    public let maxDropout: Int
    /// A packet further behind than this is not a late one (RFC 3550's MAX_MISORDER).
    public let maxMisorder: Int
    public private(set) var statistics = Statistics()

    /// The extended number of the next packet to release; nil before the first.
    private var expected: UInt64?
    /// Added to a raw sequence number to give the low 16 bits of the extended one.
    private var offset: UInt16 = 0
    /// Held packets by position after `expected` (index 0: `expected`, always empty between calls).
    private var held: [RTPPacket?]
    private var heldCount = 0
    /// A packet far off the sequence, waiting for its successor to confirm a restart.
    private var probation: RTPPacket?

    /// - Parameters: window: 1...1024 (clamped); maxDropout, maxMisorder: at least the window.
    public init(window: Int = 32, maxDropout: Int = 3000, maxMisorder: Int = 100) {
        self.window = min(max(window, 1), 1024)
        self.maxDropout = min(max(maxDropout, self.window), 30000)
        self.maxMisorder = min(max(maxMisorder, self.window), 30000)
        held = Array(repeating: nil, count: self.window + 1)
    }

    /// Packets held now.
    public var heldPackets: Int { heldCount }

    /// Takes one packet as it arrived; returns what is now in order.
    public mutating func push(_ packet: RTPPacket) -> [Event] {
        statistics.received += 1
        guard let next = expected else {
            expected = UInt64(packet.header.sequenceNumber) &+ 1
            return [.packet(packet, extendedSequence: UInt64(packet.header.sequenceNumber))]
        }
        let low = packet.header.sequenceNumber &+ offset
        let delta = Int(Int16(bitPattern: low &- UInt16(truncatingIfNeeded: next)))
        var events: [Event] = []
        if delta > maxDropout || delta < -maxMisorder {
            if let candidate = probation, candidate.header.sequenceNumber &+ 1 == packet.header.sequenceNumber {
                probation = nil
                release(upTo: next &+ UInt64(window + 1), into: &events, throughEnd: false)
                let resumed = expected ?? next
                offset = UInt16(truncatingIfNeeded: resumed) &- candidate.header.sequenceNumber
                statistics.restarts += 1
                events.append(.restarted(extendedSequence: resumed))
                events.append(.packet(candidate, extendedSequence: resumed))
                events.append(.packet(packet, extendedSequence: resumed &+ 1))
                expected = resumed &+ 2
            } else {
                if probation != nil { statistics.strays += 1 }
                probation = packet
            }
            return events
        }
        if probation != nil {
            statistics.strays += 1
            probation = nil
        }
        if delta < 0 {
            statistics.late += 1
            return events
        }
        if delta > window {
            // Make room: everything before the new packet's last window place is given up on.
            release(upTo: next &+ UInt64(delta - window), into: &events, throughEnd: true)
        }
        let position = Int((next &+ UInt64(delta)) &- (expected ?? next))
        if held[position] != nil {
            statistics.duplicates += 1
            return events
        }
        held[position] = packet
        heldCount += 1
        releaseInOrder(into: &events)
        return events
    }

    /// Releases everything held, declaring the gaps lost (no more packets are coming soon).
    public mutating func flush() -> [Event] {
        var events: [Event] = []
        if let next = expected, heldCount > 0 { release(upTo: next &+ UInt64(window + 1), into: &events, throughEnd: true) }
        return events
    }

    /// Gives out held packets in order until `end` (exclusive), the missing
    /// ones between them lost; past the last held one, the rest of the range
    /// is lost too when `throughEnd`, or left alone (a restart).
    private mutating func release(upTo end: UInt64, into events: inout [Event], throughEnd: Bool) {
        guard var next = expected else { return }
        var lostFrom: UInt64?
        while next < end {
            if heldCount == 0 {
                clearHeld()
                guard throughEnd else { break }
                // Nothing held beyond: the rest of the range is missing in one piece.
                lostFrom = lostFrom ?? next
                next = end
                break
            }
            if let packet = held[0] {
                if let first = lostFrom {
                    events.append(.lost(first: first, count: next - first))
                    statistics.lost += next - first
                }
                lostFrom = nil
                heldCount -= 1
                events.append(.packet(packet, extendedSequence: next))
            } else if lostFrom == nil {
                lostFrom = next
            }
            shift()
            next += 1
        }
        if let first = lostFrom {
            events.append(.lost(first: first, count: next - first))
            statistics.lost += next - first
        }
        expected = next
        releaseInOrder(into: &events)
    }

    private mutating func releaseInOrder(into events: inout [Event]) {
        guard var next = expected else { return }
        while let packet = held[0] {
            events.append(.packet(packet, extendedSequence: next))
            heldCount -= 1
            shift()
            next += 1
        }
        expected = next
    }

    /// Moves the window one place on.
    private mutating func shift() {
        held.removeFirst()
        held.append(nil)
    }

    private mutating func clearHeld() {
        for index in held.indices { held[index] = nil }
    }
}

/// Unwraps 32-bit RTP timestamps to a continuous 64-bit timeline. Steps
/// forwards and backwards (B-frames) up to `maxJump` ticks are taken as
/// they are, across the 2^32 wrap; a larger step (a camera that restarted,
/// a source that looped) is a discontinuity: reported, and the timeline
/// carries on from the last value plus `stepAfterJump` ticks instead of jumping.
public struct RTPTimestampUnwrapper: Sendable {
    /// The largest step, either way, taken as continuous.
    public let maxJump: UInt32
    /// Ticks the timeline advances across a discontinuity (a frame's duration, say).
    public let stepAfterJump: Int64
    private var last: UInt32?
    private var lastExtended: Int64 = 0
    public private(set) var discontinuities = 0

    /// - Parameters: maxJump: default 10 s at 90 kHz.
    public init(maxJump: UInt32 = 10 * 90_000, stepAfterJump: Int64 = 0) {
        self.maxJump = maxJump
        self.stepAfterJump = stepAfterJump
    }

    /// The continuous time of `timestamp`, and whether it follows a discontinuity.
    public mutating func unwrap(_ timestamp: UInt32) -> (time: Int64, discontinuity: Bool) {
        guard let previous = last else {
            last = timestamp
            lastExtended = Int64(timestamp)
            return (lastExtended, false)
        }
        let delta = Int32(bitPattern: timestamp &- previous)
        last = timestamp
        if delta.magnitude > maxJump {
            discontinuities += 1
            lastExtended = lastExtended.addingReportingOverflow(stepAfterJump).partialValue
            return (lastExtended, true)
        }
        lastExtended = lastExtended.addingReportingOverflow(Int64(delta)).partialValue
        return (lastExtended, false)
    }
}
