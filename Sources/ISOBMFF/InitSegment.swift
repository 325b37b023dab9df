public import NIOCore

/// Defaults for samples of a track fragment, from `trex` (overridden by `tfhd`).
public struct SampleDefaults: Sendable, Equatable {
    public var descriptionIndex: UInt32 = 1
    public var duration: UInt32 = 0
    public var size: UInt32 = 0
    public var flags: UInt32 = 0
}

/// One track of an init segment.
public struct Track: Sendable, Equatable {
    public var id: UInt32
    /// `vide`, `soun`, ...
    public var handler: FourCC
    /// Units per second of this track's timestamps.
    public var timescale: UInt32
    /// Sample entry type: `avc1`, `hev1`, `mp4a`, ...
    public var sampleEntry: FourCC?
    /// RFC 6381 codec string: `avc1.4D0033`, `hev1.1.6.L153.B0`, `mp4a.40.2`.
    public var codec: String?
    /// Picture size, for video.
    public var width: Int?
    public var height: Int?
    /// Sample rate and channel count, for audio.
    public var sampleRate: Int?
    public var channels: Int?
    /// Parameter sets and NAL length size, for H.264 and H.265.
    public var video: VideoDecoderConfiguration?
    /// From `mvex/trex`.
    public var defaults: SampleDefaults

    public var isVideo: Bool { handler == .vide }
    public var isAudio: Bool { handler == .soun }
}

/// An init segment: the `ftyp` and `moov` bytes, and what they say.
public struct InitSegment: Sendable {
    /// ftyp + moov, as received (a slice, not a copy, when they arrived together).
    public var bytes: ByteBuffer
    public var majorBrand: FourCC?
    public var tracks: [Track]
    /// Whether `mvex` is present: the movie is fragmented.
    public var isFragmented: Bool

    /// The track with `id`.
    public func track(_ id: UInt32) -> Track? { tracks.first { $0.id == id } }

    /// Parses a `moov` box's content; `ftyp` is the preceding ftyp's content, if any.
    static func parse(moov: BoxReader, ftyp: BoxReader?, bytes: ByteBuffer, maxTracks: Int) throws(ParseError) -> InitSegment {
        var majorBrand: FourCC?
        if var ftyp { majorBrand = try ftyp.fourCC("major_brand") }
        var defaults: [UInt32: SampleDefaults] = [:]
        let mvex = try moov.child(.mvex)
        if let mvex {
            var trexes = mvex
            while var trex = try trexes.nextChild(.trex) {
                guard defaults.count < maxTracks else {
                    throw trex.error(.invalidField, "mvex declares more than \(maxTracks) track defaults")
                }
                _ = try trex.fullBoxHeader()
                let id = try trex.u32("track_ID")
                defaults[id] = SampleDefaults(
                    descriptionIndex: try trex.u32("default_sample_description_index"),
                    duration: try trex.u32("default_sample_duration"),
                    size: try trex.u32("default_sample_size"),
                    flags: try trex.u32("default_sample_flags"))
            }
        }
        var tracks: [Track] = []
        var traks = moov
        while let trak = try traks.nextChild(.trak) {
            guard tracks.count < maxTracks else {
                throw trak.error(.invalidField, "moov declares more than \(maxTracks) tracks")
            }
            var track = try parseTrack(trak)
            track.defaults = defaults[track.id] ?? SampleDefaults()
            tracks.append(track)
        }
        return InitSegment(bytes: bytes, majorBrand: majorBrand, tracks: tracks, isFragmented: mvex != nil)
    }

    private static func parseTrack(_ trak: BoxReader) throws(ParseError) -> Track {
        var tkhd = try trak.required(.tkhd)
        let (version, _) = try tkhd.fullBoxHeader()
        try tkhd.skip(version == 1 ? 16 : 8, "creation and modification times")
        let id = try tkhd.u32("track_ID")
        let mdia = try trak.required(.mdia)
        var mdhd = try mdia.required(.mdhd)
        let (mdhdVersion, _) = try mdhd.fullBoxHeader()
        try mdhd.skip(mdhdVersion == 1 ? 16 : 8, "creation and modification times")
        let timescale = try mdhd.u32("timescale")
        guard timescale > 0 else { throw mdhd.error(.invalidField, "track \(id) has timescale 0") }
        var hdlr = try mdia.required(.hdlr)
        _ = try hdlr.fullBoxHeader()
        _ = try hdlr.u32("pre_defined")
        let handler = try hdlr.fourCC("handler_type")
        var track = Track(id: id, handler: handler, timescale: timescale, defaults: SampleDefaults())
        guard let minf = try mdia.child(.minf), let stbl = try minf.child(.stbl), var stsd = try stbl.child(.stsd) else {
            return track
        }
        _ = try stsd.fullBoxHeader()
        let entries = try stsd.u32("entry_count")
        guard entries > 0, let entry = try stsd.nextChild() else { return track }
        track.sampleEntry = entry.type
        var body = entry.reader
        switch entry.type {
        case .avc1, .avc3, .hev1, .hvc1, "encv":
            // VisualSampleEntry: 6 reserved, data_reference_index, 16 bytes pre_defined/reserved.
            try body.skip(6 + 2 + 16, "visual sample entry header")
            track.width = Int(try body.u16("width"))
            track.height = Int(try body.u16("height"))
            try body.skip(4 + 4 + 4 + 2 + 32 + 2 + 2, "visual sample entry fields")
            if let avcC = try body.child(.avcC) {
                let config = try VideoDecoderConfiguration.avc(avcC)
                track.video = config
                track.codec = "\(entry.type).\(config.codecParameters)"
            } else if let hvcC = try body.child(.hvcC) {
                let config = try VideoDecoderConfiguration.hevc(hvcC)
                track.video = config
                track.codec = "\(entry.type).\(config.codecParameters)"
            } else {
                track.codec = entry.type.description
            }
        case .mp4a:
            // AudioSampleEntry: 6 reserved, data_reference_index, 8 reserved.
            try body.skip(6 + 2 + 8, "audio sample entry header")
            track.channels = Int(try body.u16("channelcount"))
            try body.skip(2 + 4, "samplesize and reserved")
            track.sampleRate = Int(try body.u32("samplerate") >> 16)
            if let esds = try body.child(.esds) {
                let config = try AudioDecoderConfiguration.esds(esds)
                track.codec = "mp4a.\(config.codecParameters)"
            } else {
                track.codec = "mp4a"
            }
        default:
            track.codec = entry.type.description
        }
        return track
    }
}
