public import NIOCore

/// What the NAL unit headers of one video sample say: reads one length and
/// one header byte per NAL unit, never the slice data.
public struct NALSummary: Sendable, Equatable {
    /// NAL unit types present, as bits (1 << type).
    public var types: UInt64 = 0
    public var count = 0
    /// H.264 IDR (type 5) or H.265 IRAP (BLA, IDR, CRA: types 16...21).
    public var isKeyframe = false
    /// SPS present in the sample itself.
    public var hasParameterSets = false

    public init() {}

    /// Counts one NAL unit by its first header byte.
    mutating func add(header: UInt8, codec: VideoDecoderConfiguration.Codec) {
        let type: UInt8
        switch codec {
        case .h264:
            type = header & 0x1F
            if type == 5 { isKeyframe = true }
            if type == 7 { hasParameterSets = true }
        case .h265:
            type = (header >> 1) & 0x3F
            if (16...21).contains(type) { isKeyframe = true }
            if type == 33 { hasParameterSets = true }
        }
        types |= 1 << UInt64(type & 0x3F)
        count += 1
    }
}

extension VideoDecoderConfiguration {
    /// Walks the length-prefixed NAL units of `sample`.
    /// - Throws: when a length runs past the sample's end.
    public func summarize(_ sample: ByteBuffer) throws(ParseError) -> NALSummary {
        var summary = NALSummary()
        var index = sample.readerIndex
        let end = sample.writerIndex
        while index < end {
            guard index + nalLengthSize <= end else {
                throw ParseError(.invalidField, "\(end - index) stray bytes after the last NAL unit", offset: Int64(index),
                                 path: "sample")
            }
            var length = 0
            for i in 0..<nalLengthSize { length = length << 8 | Int(sample.getInteger(at: index + i, as: UInt8.self) ?? 0) }
            index += nalLengthSize
            guard length > 0, index + length <= end else {
                throw ParseError(.invalidField, "a NAL unit of \(length) bytes overruns its sample (\(end - index) left)",
                                 offset: Int64(index), path: "sample")
            }
            summary.add(header: sample.getInteger(at: index, as: UInt8.self) ?? 0, codec: codec)
            index += length
        }
        return summary
    }

    /// The sample in Annex B form: each NAL unit behind a 4-byte start code,
    /// and the parameter sets first when `withParameterSets` (for keyframes)
    /// and the sample does not carry its own.
    public func annexB(_ sample: ByteBuffer, withParameterSets: Bool) throws(ParseError) -> ByteBuffer {
        let summary = try summarize(sample)
        let sets = withParameterSets && !summary.hasParameterSets ? parameterSets : []
        let extra = (summary.count + sets.count) * 4 + sets.reduce(0) { $0 + $1.readableBytes }
        var out = ByteBuffer()
        out.reserveCapacity(sample.readableBytes + extra)
        for set in sets {
            out.writeInteger(UInt32(1))
            out.writeImmutableBuffer(set)
        }
        var index = sample.readerIndex
        while index < sample.writerIndex {
            var length = 0
            for i in 0..<nalLengthSize { length = length << 8 | Int(sample.getInteger(at: index + i, as: UInt8.self) ?? 0) }
            index += nalLengthSize
            out.writeInteger(UInt32(1))
            if let unit = sample.getSlice(at: index, length: length) { out.writeImmutableBuffer(unit) }
            index += length
        }
        return out
    }
}

extension VideoDecoderConfiguration {
    /// Like ``summarize(_:)`` for a sample already in Annex B form (start codes).
    public func summarizeAnnexB(_ sample: ByteBuffer) -> NALSummary {
        var summary = NALSummary()
        sample.withUnsafeReadableBytes { bytes in
            var index = 0
            var zeros = 0
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                if byte == 0 {
                    zeros += 1
                    continue
                }
                defer { zeros = 0 }
                guard byte == 1, zeros >= 2, index < bytes.count else { continue }
                summary.add(header: bytes[index], codec: codec)
            }
        }
        return summary
    }
}
