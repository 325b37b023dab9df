/// One report block of an SR or RR (RFC 3550 §6.4.1).
public struct RTCPReportBlock: Sendable, Equatable {
    public var ssrc: UInt32
    public var fractionLost: UInt8
    /// 24-bit signed cumulative count.
    public var cumulativeLost: Int32
    public var highestSequence: UInt32
    public var jitter: UInt32
    public var lastSenderReport: UInt32
    public var delaySinceLastSenderReport: UInt32

    public init(ssrc: UInt32, fractionLost: UInt8 = 0, cumulativeLost: Int32 = 0, highestSequence: UInt32 = 0, jitter: UInt32 = 0,
                lastSenderReport: UInt32 = 0, delaySinceLastSenderReport: UInt32 = 0) {
        self.ssrc = ssrc
        self.fractionLost = fractionLost
        self.cumulativeLost = cumulativeLost
        self.highestSequence = highestSequence
        self.jitter = jitter
        self.lastSenderReport = lastSenderReport
        self.delaySinceLastSenderReport = delaySinceLastSenderReport
    }
}

/// A sender report (RFC 3550 §6.4.1, PT 200).
public struct RTCPSenderReport: Sendable, Equatable {
    public var ssrc: UInt32
    /// 64-bit NTP time: seconds since 1900 in the top 32 bits, the fraction below.
    public var ntpTimestamp: UInt64
    public var rtpTimestamp: UInt32
    public var packetCount: UInt32
    public var octetCount: UInt32
    public var reports: [RTCPReportBlock]

    public init(ssrc: UInt32, ntpTimestamp: UInt64, rtpTimestamp: UInt32, packetCount: UInt32, octetCount: UInt32,
                reports: [RTCPReportBlock] = []) {
        self.ssrc = ssrc
        self.ntpTimestamp = ntpTimestamp
        self.rtpTimestamp = rtpTimestamp
        self.packetCount = packetCount
        self.octetCount = octetCount
        self.reports = reports
    }

    /// The NTP timestamp of a Unix time in nanoseconds (70 years of seconds apart).
    public static func ntpTimestamp(unixNanoseconds: Int64) -> UInt64 {
        let seconds = UInt64(unixNanoseconds / 1_000_000_000) &+ 2_208_988_800
        let nanos = UInt64(unixNanoseconds % 1_000_000_000)
        return seconds << 32 | (nanos << 32) / 1_000_000_000
    }
}

/// A generic NACK's FCI entry (RFC 4585 §6.2.1): a lost packet id and a
/// bitmask of the 16 after it that were lost too.
public struct RTCPNACKEntry: Sendable, Equatable {
    public var packetID: UInt16
    public var lostBitmask: UInt16

    public init(packetID: UInt16, lostBitmask: UInt16) {
        self.packetID = packetID
        self.lostBitmask = lostBitmask
    }

    /// The 1–17 sequence numbers this entry names as lost, in order (wrapping at 65535).
    public var sequenceNumbers: [UInt16] {
        var numbers = [packetID]
        for bit in 0..<16 where lostBitmask & (1 << bit) != 0 { numbers.append(packetID &+ UInt16(bit + 1)) }
        return numbers
    }

    /// Entries covering `numbers` (PID then up to 16 followers each), for tests and peers.
    public static func covering(_ numbers: [UInt16]) -> [RTCPNACKEntry] {
        var entries: [RTCPNACKEntry] = []
        for number in numbers {
            if var last = entries.last, number &- last.packetID >= 1, number &- last.packetID <= 16 {
                last.lostBitmask |= 1 << (number &- last.packetID - 1)
                entries[entries.count - 1] = last
            } else {
                entries.append(RTCPNACKEntry(packetID: number, lostBitmask: 0))
            }
        }
        return entries
    }
}

/// A FIR's FCI entry (RFC 5104 §4.3.1.1).
public struct RTCPFIREntry: Sendable, Equatable {
    public var ssrc: UInt32
    public var sequenceNumber: UInt8

    public init(ssrc: UInt32, sequenceNumber: UInt8) {
        self.ssrc = ssrc
        self.sequenceNumber = sequenceNumber
    }
}

/// One RTCP packet of a compound (or reduced-size, RFC 5506) datagram.
public enum RTCPPacket: Sendable, Equatable {
    case senderReport(RTCPSenderReport)
    case receiverReport(ssrc: UInt32, reports: [RTCPReportBlock])
    /// Generic NACK (PT 205, FMT 1).
    case nack(senderSSRC: UInt32, mediaSSRC: UInt32, entries: [RTCPNACKEntry])
    /// Picture Loss Indication (PT 206, FMT 1).
    case pictureLoss(senderSSRC: UInt32, mediaSSRC: UInt32)
    /// Full Intra Request (PT 206, FMT 4).
    case fullIntraRequest(senderSSRC: UInt32, entries: [RTCPFIREntry])
    /// BYE (PT 203): the sources leaving.
    case bye(ssrcs: [UInt32])
    /// SDES, XR, APP, REMB, transport-cc and the rest: skipped, kept by type for counting.
    case other(packetType: UInt8, format: UInt8)

    public static let senderReportType: UInt8 = 200
    public static let receiverReportType: UInt8 = 201
    public static let byeType: UInt8 = 203
    public static let transportFeedbackType: UInt8 = 205
    public static let payloadFeedbackType: UInt8 = 206
}
