/// `a=x-camflow-media-clock:<ssrc> <rtp-timestamp> <source-media-seconds>`:
/// a session attribute of camflow's WHEP answer tying the 90 kHz RTP clock of
/// the video it sends that peer to the source's media timeline (the decode
/// times of the fragments camflow received), so a page can tell which source
/// frame it shows from `requestVideoFrameCallback`'s `rtpTimestamp`
/// (`camflow bench latency` does). Browsers ignore unknown session attributes.
/// The mapping holds while camflow's timeline for the stream is continuous (a
/// camera that starts its times over moves it; a new offer gets the new one).
public struct CamflowMediaClock: Sendable, Equatable {
    public static let name = "x-camflow-media-clock"

    public var ssrc: UInt32
    public var rtpTimestamp: UInt32
    /// The source media time at `rtpTimestamp`, in nanoseconds.
    public var mediaNanoseconds: Int64

    public init(ssrc: UInt32, rtpTimestamp: UInt32, mediaNanoseconds: Int64) {
        self.ssrc = ssrc
        self.rtpTimestamp = rtpTimestamp
        self.mediaNanoseconds = mediaNanoseconds
    }

    /// The attribute without `a=`; seconds with 9 decimals (exact nanoseconds, no rounding through a Double).
    public var attribute: String {
        let magnitude = mediaNanoseconds.magnitude
        let fraction = String(magnitude % 1_000_000_000)
        let seconds = (mediaNanoseconds < 0 ? "-" : "") + String(magnitude / 1_000_000_000) + "."
            + String(repeating: "0", count: 9 - fraction.count) + fraction
        return "\(Self.name):\(ssrc) \(rtpTimestamp) \(seconds)"
    }

    /// Reads the attribute, with or without `a=`; nil when it is not one.
    public init?(attribute: Substring) {
        var text = attribute.hasPrefix("a=") ? attribute.dropFirst(2) : attribute
        guard text.hasPrefix(Self.name + ":") else { return nil }
        text = text.dropFirst(Self.name.count + 1)
        let fields = text.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count == 3, let ssrc = UInt32(fields[0]), let rtp = UInt32(fields[1]),
              let nanoseconds = Self.nanoseconds(fields[2]) else { return nil }
        self.init(ssrc: ssrc, rtpTimestamp: rtp, mediaNanoseconds: nanoseconds)
    }

    /// The attribute of an SDP (an answer), if it has one.
    public init?(sdp: String) {
        for line in sdp.split(whereSeparator: \.isNewline) {
            if let clock = CamflowMediaClock(attribute: line) {
                self = clock
                return
            }
        }
        return nil
    }

    /// The source media time (seconds) of a frame sent with RTP timestamp
    /// `rtp`: the signed distance from the reference modulo 2^32, so a
    /// timestamp that wrapped past 2^32 (or lies a little before the
    /// reference) maps right, within ±6.6 hours of it.
    public func mediaSeconds(ofRTPTimestamp rtp: UInt32) -> Double {
        Double(mediaNanoseconds) / 1e9 + Double(Int32(bitPattern: rtp &- rtpTimestamp)) / 90000
    }

    private static func isDigit(_ character: Character) -> Bool { ("0"..."9").contains(character) }

    /// `-12.345` as nanoseconds; at most 9 decimals.
    private static func nanoseconds(_ text: Substring) -> Int64? {
        var rest = text
        let negative = rest.hasPrefix("-")
        if negative { rest = rest.dropFirst() }
        let parts = rest.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let wholeText = parts.first, !wholeText.isEmpty, wholeText.allSatisfy(Self.isDigit),
              let whole = Int64(wholeText), whole < 9_000_000_000 else { return nil }
        var fraction: Int64 = 0
        if parts.count == 2 {
            let digits = parts[1]
            guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy(Self.isDigit),
                  let value = Int64(digits) else { return nil }
            fraction = value
            for _ in digits.count..<9 { fraction *= 10 }
        }
        let total = whole * 1_000_000_000 + fraction
        return negative ? -total : total
    }
}
