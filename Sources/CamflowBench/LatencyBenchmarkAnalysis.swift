import Foundation
import WebRTCProtocol

/// What `Tests/Peers/latency_viewer.py` recorded (JSON lines), read back:
/// per way of watching, its presented frames (times on CLOCK_MONOTONIC, ms),
/// the fragments' arrivals at the page, the WHEP answer's media clock, and
/// the once-a-second diagnostics.
struct LatencyRecording {
    /// A presented frame: when it was expected on the glass, its media time
    /// on the player's timeline, its RTP timestamp (WebRTC; -1 otherwise) and
    /// the frame number read from the picture (-1 when not read).
    struct Frame: Equatable {
        var at: Double
        var media: Double
        var rtp: Int64
        var number: Int
    }

    /// A fragment reaching the page, with its media time on the player's timeline.
    struct Arrival: Equatable {
        var at: Double
        var media: Double
    }

    var frames: [String: [Frame]] = [:]
    var arrivals: [String: [Arrival]] = [:]
    var clocks: [String: CamflowMediaClock] = [:]
    /// Numeric fields of each diagnostics line, in order.
    var diagnostics: [String: [[String: Double]]] = [:]
    var errors: [String] = []

    init() {}

    init(jsonLines text: String) {
        for line in text.split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let type = object["type"] as? String, let way = object["way"] as? String else { continue }
            func number(_ key: String) -> Double? { (object[key] as? NSNumber)?.doubleValue }
            switch type {
            case "frame":
                guard let at = number("at"), let media = number("media") else { continue }
                frames[way, default: []].append(Frame(at: at, media: media, rtp: Int64(number("rtp") ?? -1),
                                                      number: Int(number("number") ?? -1)))
            case "arrival":
                guard let at = number("at"), let media = number("media") else { continue }
                arrivals[way, default: []].append(Arrival(at: at, media: media))
            case "clock":
                if let attribute = object["attribute"] as? String, let clock = CamflowMediaClock(attribute: Substring(attribute)) {
                    clocks[way] = clock
                }
            case "diag":
                var values: [String: Double] = [:]
                for (key, value) in object {
                    if let value = value as? NSNumber, !(value is Bool) || key == "paused" { values[key] = value.doubleValue }
                }
                diagnostics[way, default: []].append(values)
            case "error":
                errors.append("\(way): \(object["message"] as? String ?? "?")")
            default:
                continue
            }
        }
    }
}

/// When the simulator sent each frame: one fragment per frame, frame `j`
/// (media time `j · frameDuration` from the file's start, the loop's passes
/// continuing the count) leaves at `origin + (j + 1) · frameDuration`, once
/// it has been recorded (speed 1).
struct SenderTimeline: Equatable {
    /// The simulator's timeline origin on CLOCK_MONOTONIC, milliseconds.
    var originMilliseconds: Double
    /// Seconds per frame.
    var frameDuration: Double
    /// Frames in one pass of the file: the frame number in the picture counts them.
    var framesPerLoop: Int

    func sendTime(media: Double) -> Double {
        originMilliseconds + (media + frameDuration) * 1000
    }

    /// The frame (counted from the stream's start, over passes) whose
    /// picture says `number` and was sent last before `at`: the loop's pass is
    /// the one putting its send time closest before the presentation.
    func frameIndex(number: Int, presentedAt at: Double) -> Int {
        let latest = Int(((at - originMilliseconds) / (frameDuration * 1000)).rounded(.down)) - 1
        let back = ((latest - number) % framesPerLoop + framesPerLoop) % framesPerLoop
        return latest - back
    }
}

/// One way of watching's latencies, frame by frame.
struct WayLatency {
    var way: String
    /// Presentation time (ms) and glass-to-glass latency (ms) of each frame measured, in order.
    var samples: [(at: Double, milliseconds: Double)] = []
    /// Send to the page's receipt of the fragment (ms), MSE only.
    var arrivalMilliseconds: [Double] = []
    /// Frames whose picture number was read and agreed with their mapped media time, of those read.
    var numbersAgreeing = 0
    var numbersRead = 0
    /// How media times were mapped to the sender's: `rtp clock` or `frame numbers`.
    var mapping = ""
    var latencies: [Double] { samples.map(\.milliseconds) }
}

enum LatencyAnalysis {
    /// Each way's latencies, leaving out the frames presented in the first
    /// `warmup` seconds after its first frame (the start's catch-up).
    static func analyse(_ recording: LatencyRecording, timeline: SenderTimeline, warmup: Double, ways: [String]) -> [WayLatency] {
        ways.map { way in
            var result = WayLatency(way: way)
            let frames = recording.frames[way] ?? []
            guard let first = frames.first else { return result }
            let mapped: [(frame: LatencyRecording.Frame, media: Double)]
            if let clock = recording.clocks[way] {
                result.mapping = "rtp clock"
                mapped = frames.filter { $0.rtp >= 0 }.map { ($0, clock.mediaSeconds(ofRTPTimestamp: UInt32(truncatingIfNeeded: $0.rtp))) }
            } else {
                result.mapping = "frame numbers"
                let offsets = calibrations(frames, timeline: timeline)
                mapped = frames.compactMap { frame in nearest(offsets, to: frame.at).map { (frame, frame.media + $0) } }
                result.arrivalMilliseconds = (recording.arrivals[way] ?? []).compactMap { arrival in
                    guard arrival.at >= first.at + warmup * 1000 else { return nil }
                    return nearest(offsets, to: arrival.at).map { arrival.at - timeline.sendTime(media: arrival.media + $0) }
                }
            }
            for (frame, media) in mapped {
                if frame.number >= 0 {
                    result.numbersRead += 1
                    let index = Int((media / timeline.frameDuration).rounded())
                    if (index % timeline.framesPerLoop + timeline.framesPerLoop) % timeline.framesPerLoop == frame.number {
                        result.numbersAgreeing += 1
                    }
                }
                guard frame.at >= first.at + warmup * 1000 else { continue }
                result.samples.append((frame.at, frame.at - timeline.sendTime(media: media)))
            }
            return result
        }
    }

    /// (time, offset from the player's media time to the sender's) from each
    /// frame whose number was read; each offset the median of itself and its
    /// neighbours, so one misread picture does not move the mapping.
    static func calibrations(_ frames: [LatencyRecording.Frame], timeline: SenderTimeline) -> [(at: Double, offset: Double)] {
        let raw = frames.filter { $0.number >= 0 && $0.number < timeline.framesPerLoop }.map { frame in
            (at: frame.at, offset: Double(timeline.frameIndex(number: frame.number, presentedAt: frame.at)) * timeline.frameDuration - frame.media)
        }
        return raw.indices.map { index in
            let window = raw[max(0, index - 1)...min(raw.count - 1, index + 1)].map(\.offset).sorted()
            return (raw[index].at, window[window.count / 2])
        }
    }

    /// The offset of the calibration closest in time to `at` (calibrations in time order).
    static func nearest(_ offsets: [(at: Double, offset: Double)], to at: Double) -> Double? {
        guard !offsets.isEmpty else { return nil }
        var low = 0
        var high = offsets.count
        while low < high {
            let middle = (low + high) / 2
            if offsets[middle].at < at { low = middle + 1 } else { high = middle }
        }
        if low == offsets.count { return offsets[low - 1].offset }
        if low == 0 { return offsets[0].offset }
        return at - offsets[low - 1].at <= offsets[low].at - at ? offsets[low - 1].offset : offsets[low].offset
    }
}
