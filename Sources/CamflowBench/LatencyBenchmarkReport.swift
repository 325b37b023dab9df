import Foundation

/// The lines `camflow bench latency` prints for each way of watching: the
/// latency line (median, p95, max, and the median at the start and at the end
/// of the run, so a long run shows drift), the goal, and where the time goes.
enum LatencyReport {
    /// The goals on loopback at 720p 25 fps: p50 and p95 ceilings in ms (nil: none).
    static let goals: [String: (p50: Double, p95: Double?)] = [
        "webrtc": (150, 250), "mse": (300, nil), "ll-hls": (1500, nil),
    ]

    /// `webrtc  p50 92 ms  p95 140 ms  max 210 ms  (480 frames; first 10 %: p50 90 ms, last 10 %: p50 93 ms)`.
    static func line(_ way: WayLatency) -> String {
        let values = way.latencies
        guard let p50 = values.percentile(50), let p95 = values.percentile(95), let max = values.max() else {
            return "\(pad(way.way))  no frames measured"
        }
        let (start, end, label) = ends(way.samples)
        var text = "\(pad(way.way))  p50 \(ms(p50))  p95 \(ms(p95))  max \(ms(max))  (\(values.count) frames"
        if let start, let end { text += "; \(label.first): p50 \(ms(start)), \(label.last): p50 \(ms(end))" }
        return text + ")"
    }

    /// Whether the way met its goal, said in one line; nil for a way without one.
    static func goal(_ way: WayLatency) -> String? {
        guard let goal = goals[way.way], let p50 = way.latencies.percentile(50) else { return nil }
        var text = "  goal p50 <= \(Int(goal.p50)) ms"
        var met = p50 <= goal.p50
        if let limit = goal.p95, let p95 = way.latencies.percentile(95) {
            text += ", p95 <= \(Int(limit)) ms"
            met = met && p95 <= limit
        }
        return text + (met ? ": met" : ": MISSED")
    }

    /// Where the time goes, from the page's own numbers.
    static func detail(_ way: WayLatency, diagnostics: [[String: Double]]) -> String {
        var parts = ["mapped by \(way.mapping)"]
        if way.numbersRead > 0 { parts.append("frame numbers agree \(way.numbersAgreeing)/\(way.numbersRead)") }
        if let arrival = way.arrivalMilliseconds.percentile(50), let total = way.latencies.percentile(50) {
            parts.append("send -> page p50 \(ms(arrival)), page -> glass \(ms(total - arrival))")
        }
        let ahead = diagnostics.compactMap { $0["bufferedAhead"] }.filter { $0 > 0 }.map { $0 * 1000 }
        if let median = ahead.percentile(50) { parts.append("buffered ahead p50 \(ms(median))") }
        let slack = diagnostics.compactMap { $0["slack"] }.map { $0 * 1000 }
        if let median = slack.percentile(50) { parts.append("player's slack p50 \(ms(median))") }
        let rates = diagnostics.compactMap { $0["playbackRate"] }
        if let low = rates.min(), let high = rates.max(), low != 1 || high != 1 {
            parts.append("playback rate \(low.text(2))-\(high.text(2))")
        }
        if let last = diagnostics.last(where: { $0["jitterBufferEmittedCount"] != nil }),
           let emitted = last["jitterBufferEmittedCount"], emitted > 0 {
            parts.append("jitter buffer \(ms((last["jitterBufferDelay"] ?? 0) / emitted * 1000)) a frame")
            if let decoded = last["framesDecoded"], decoded > 0 {
                parts.append("decode \(ms((last["totalDecodeTime"] ?? 0) / decoded * 1000)) a frame")
            }
            parts.append("\(Int(last["framesDropped"] ?? 0)) dropped, \(Int(last["packetsLost"] ?? 0)) packets lost")
        } else if let last = diagnostics.last(where: { $0["totalFrames"] != nil }) {
            parts.append("\(Int(last["droppedFrames"] ?? 0)) of \(Int(last["totalFrames"] ?? 0)) frames dropped")
        }
        return "  " + parts.joined(separator: "; ")
    }

    /// The medians at the start and at the end: of the first and last minute
    /// for runs of 10 minutes or more, of the first and last 10 % otherwise.
    static func ends(_ samples: [(at: Double, milliseconds: Double)]) -> (Double?, Double?, (first: String, last: String)) {
        guard let first = samples.first?.at, let last = samples.last?.at, last > first else {
            return (nil, nil, ("first", "last"))
        }
        let span = last - first
        let window = span >= 600_000 ? 60_000 : span / 10
        let label = span >= 600_000 ? ("first minute", "last minute") : ("first 10 %", "last 10 %")
        let start = samples.filter { $0.at <= first + window }.map(\.milliseconds).percentile(50)
        let end = samples.filter { $0.at >= last - window }.map(\.milliseconds).percentile(50)
        return (start, end, label)
    }

    static func ms(_ value: Double) -> String { "\(Int(value.rounded())) ms" }

    private static func pad(_ way: String) -> String { way.padding(toLength: 6, withPad: " ", startingAt: 0) }
}
