public import ISOBMFF
public import NIOCore
public import Foundation

/// A fragmented MP4 file prepared to play as a live camera: an init segment
/// and fragments that loop forever with continuous timestamps. Pure.
public struct SimulatedMedia: Sendable {
    /// ftyp + moov.
    public let initSegment: ByteBuffer
    public let fragments: [Fragment]
    /// When each fragment starts, in seconds from the first one.
    public let starts: [Double]
    /// One pass of the file, in seconds.
    public let loopSeconds: Double
    /// Whether each fragment starts with a video keyframe (an RTSP client may join there).
    public let startsWithKeyframe: [Bool]
    private let timescales: [UInt32: UInt32]

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    public init(file: ByteBuffer) throws {
        var parser = StreamingParser(configuration: .init(maxBoxSize: max(file.readableBytes, 1)))
        parser.append(file)
        var initSegment: InitSegment?
        var fragments: [Fragment] = []
        while let item = try parser.next() {
            switch item {
            case .initSegment(let segment): initSegment = initSegment ?? segment
            case .fragment(let fragment): fragments.append(fragment)
            case .skipped: continue
            }
        }
        guard let initSegment else { throw Invalid(description: "the media has no init segment (moov)") }
        guard !fragments.isEmpty else { throw Invalid(description: "the media has no fragments: use a fragmented MP4") }
        let lead = initSegment.tracks.first(where: \.isVideo) ?? initSegment.tracks[0]
        func leadTimes(_ fragment: Fragment) -> (start: Double, end: Double)? {
            let samples = fragment.samples.filter { $0.track == lead.id }
            guard let first = samples.first, let last = samples.last else { return nil }
            let scale = Double(lead.timescale)
            return (Double(first.dts) / scale, Double(last.dts + Int64(last.duration)) / scale)
        }
        let times = fragments.map(leadTimes)
        let origin = times.compactMap { $0?.start }.first ?? 0
        var starts: [Double] = []
        var previous = 0.0
        for time in times {
            previous = max(previous, (time?.start ?? previous + origin) - origin)
            starts.append(previous)
        }
        let end = times.compactMap { $0?.end }.max().map { $0 - origin } ?? 0
        self.initSegment = initSegment.bytes
        self.fragments = fragments
        self.starts = starts
        self.loopSeconds = max(end, (starts.last ?? 0) + 0.001)
        self.startsWithKeyframe = fragments.map { fragment in
            fragment.samples.first(where: { $0.track == lead.id })?.isSync ?? !lead.isVideo
        }
        self.timescales = Dictionary(uniqueKeysWithValues: initSegment.tracks.map { ($0.id, $0.timescale) })
    }

    /// When fragment `index` of pass `loop` starts, in seconds from the stream's start.
    public func start(_ index: Int, loop: Int) -> Double {
        Double(loop) * loopSeconds + starts[index]
    }

    /// When fragment `index` of pass `loop` ends: a live camera can send it only then.
    public func end(_ index: Int, loop: Int) -> Double {
        index + 1 < starts.count ? start(index + 1, loop: loop) : Double(loop + 1) * loopSeconds
    }

    /// The first fragment starting at or after `seconds`.
    public func position(startingAtOrAfter seconds: Double) -> (loop: Int, index: Int) {
        let loop = max(0, Int((seconds / loopSeconds).rounded(.down)))
        let within = seconds - Double(loop) * loopSeconds
        if let index = starts.firstIndex(where: { $0 >= within - 1e-9 }) { return (loop, index) }
        return (loop + 1, 0)
    }

    /// Fragment `index` of pass `loop`, its timestamps moved by whole passes.
    public func fragment(_ index: Int, loop: Int) -> ByteBuffer {
        guard loop > 0 else { return fragments[index].bytes }
        let seconds = Double(loop) * loopSeconds
        return fragments[index].rewritingTimes(sequenceShift: UInt32(truncatingIfNeeded: loop * fragments.count)) {
            Int64((seconds * Double(timescales[$0] ?? 1)).rounded())
        }
    }

    /// The top-level boxes of `bytes`, as slices.
    public static func boxes(_ bytes: ByteBuffer) -> [ByteBuffer] {
        var rest = bytes
        var boxes: [ByteBuffer] = []
        while rest.readableBytes >= 8, let size = rest.getInteger(at: rest.readerIndex, as: UInt32.self),
              size >= 8, let box = rest.readSlice(length: min(Int(size), rest.readableBytes)) {
            boxes.append(box)
        }
        if rest.readableBytes > 0 { boxes.append(rest) }
        return boxes
    }
}

extension SimulatedMedia {
    /// The 640x360 H.264 + AAC clip the simulator serves when given no file.
    public static var builtInClip: URL? { Bundle.module.url(forResource: "camera", withExtension: "mp4") }
}
