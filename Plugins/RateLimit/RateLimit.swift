public import Camflow

/// The decision of `rate-limit`, per stream: a value, tested without tasks.
///
/// A token bucket of `fps` tokens refills at `fps` per second of media time.
/// A keyframe always passes. A delta frame passes while tokens last, and only
/// while every frame since the keyframe passed: once one is dropped, the rest
/// of that GOP is dropped too, so what passes always decodes.
struct RateLimiter {
    let fps: Double
    private var tokens: Double
    private var lastTime: Double?
    private var gopBroken = true

    init(fps: Double) {
        self.fps = fps
        self.tokens = fps
    }

    /// Whether a video frame at `time` (seconds of media time) passes.
    mutating func admit(time: Double, keyframe: Bool) -> Bool {
        if let lastTime { tokens = min(fps, tokens + max(0, time - lastTime) * fps) }
        lastTime = time
        if keyframe {
            gopBroken = false
            tokens = max(0, tokens - 1)
            return true
        }
        guard !gopBroken, tokens >= 1 else {
            gopBroken = true
            return false
        }
        tokens -= 1
        return true
    }
}

/// `rate-limit`: at most `fps` video frames per second for consumers such as
/// ML models, keeping every keyframe and never breaking a GOP it passes on.
struct RateLimit: PacketProcessor {
    static let type = NodeType(
        name: "rate-limit",
        summary: "Passes at most fps video frames per second, keeping keyframes and whole GOP prefixes.",
        details: """
            For consumers that cannot take every frame, such as ML models. Every keyframe passes; \
            delta frames pass while a budget of 'fps' frames per second of media time lasts, and \
            once a frame of a GOP is dropped, the rest of that GOP is too, so every frame that \
            passes can be decoded. Audio frames pass unless 'drop-audio'; other packets pass.
            """,
        options: [
            OptionSpec("fps", .number, required: true, above: "0", "Most video frames per second to pass."),
            OptionSpec("drop-audio", .bool, default: "false", "Drop audio frames."),
            .maxStreams(),
        ],
        accepts: [.initSegment, .frame, .event],
        emits: .inputKinds,
        make: { options in
            RateLimit(fps: try options.number("fps"), dropAudio: try options.bool("drop-audio"),
                      maxStreams: try options.maxStreams())
        })

    let fps: Double
    let dropAudio: Bool
    private var limiters: StreamTable<RateLimiter>

    init(fps: Double, dropAudio: Bool, maxStreams: Int = 64) {
        self.fps = fps
        self.dropAudio = dropAudio
        self.limiters = StreamTable(capacity: maxStreams)
    }

    mutating func process(_ packet: Packet, _ context: NodeContext) async throws {
        guard packet.kind == .frame, let media = packet.media else {
            await context.emit(packet)
            return
        }
        // The frame says what its track carries; a frame of unknown kind is limited as video.
        if media.trackKind == .audio {
            if dropAudio { context.stats.countDropped() } else { await context.emit(packet) }
            return
        }
        // Decode time: it only grows, where presentation time jumps around B-frames.
        let time = media.timescale > 0 ? Double(media.dts ?? media.pts ?? 0) / Double(media.timescale) : 0
        var limiter = limiters.take(packet.stream) ?? RateLimiter(fps: fps)
        let pass = limiter.admit(time: time, keyframe: packet.isKeyframe)
        if let evicted = limiters.put(limiter, for: packet.stream) {
            // rate-limit emits only what it is given: the eviction is logged, not sent downstream.
            await context.reportEvicted(stream: evicted.stream, capacity: limiters.capacity, emitEvent: false)
        }
        if pass { await context.emit(packet) } else { context.stats.countDropped() }
    }
}

/// The `rate-limit` node: a plugin written against the public Camflow API
/// only, and the worked example of docs/custom-nodes.md.
public enum RateLimitPlugin: CamflowPlugin {
    public static let name = "rate-limit"
    public static var nodeTypes: [NodeType] { [RateLimit.type] }
}
