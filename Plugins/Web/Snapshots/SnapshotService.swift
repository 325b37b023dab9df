import Camflow
import ChildIO
import ISOBMFF
import Logging
import NIOCore
import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `/snapshot/{stream}.jpg`: the latest keyframe decoded to JPEG by an
/// FFmpeg child process. One decode per keyframe and width however many
/// ask (later requests share it), at most `maxDecodes` at once (more are
/// answered 503), and a cache of the latest pictures only. A keyframe whose
/// sequence parameter set declares a picture past ``SnapshotLimits`` is
/// refused before FFmpeg runs.
final class SnapshotService: Sendable {
    enum Failure: Error, Equatable {
        case noKeyframe
        case busy
        case decodeFailed(String)
    }

    private struct Key: Hashable {
        let stream: String
        let width: Int?
    }

    private struct Entry {
        /// Which keyframe: its number and decode time (a stream made again counts from 1 again).
        let keyframe: Int
        let dts: Int64
        let task: Task<ByteBuffer, any Error>
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        var running = 0
    }

    let ffmpeg: String
    let maxDecodes: Int
    /// Pictures cached at once (a stream and width each).
    let maxEntries: Int
    let timeout: Duration
    /// What the timeout is measured on.
    let clock: any PipelineClock
    let limits: SnapshotLimits
    /// Why a decode failed, in full: a client is told only what kind of failure it was.
    let logger: Logger
    private let store: HLSStore
    private let state = Mutex(State())

    init(store: HLSStore, ffmpeg: String, maxDecodes: Int, maxEntries: Int = 64, timeout: Duration = .seconds(10),
         clock: any PipelineClock = SystemClock(), limits: SnapshotLimits = SnapshotLimits(),
         logger: Logger = Logger(label: "camflow.web.snapshots")) {
        self.store = store
        self.ffmpeg = ffmpeg
        self.maxDecodes = maxDecodes
        self.maxEntries = maxEntries
        self.timeout = timeout
        self.clock = clock
        self.limits = limits
        self.logger = logger
    }

    /// The JPEG of `stream`'s latest keyframe, scaled to `width` when given.
    func jpeg(stream: String, width: Int?) async throws -> ByteBuffer {
        guard let keyframe = store.read(stream, { $0.latestKeyframe }) else { throw Failure.noKeyframe }
        // A width at or past the picture's own is the picture itself: one decode and one cache entry for all
        // of them (each new width was a new decode, 0.9 of a core for 4 clients stepping through widths).
        let width = width.flatMap { width in Self.pictureWidth(of: keyframe).map { width < $0 ? width : nil } ?? width }
        let key = Key(stream: stream, width: width)
        let task: Task<ByteBuffer, any Error> = try state.withLock { state in
            if let entry = state.entries[key], entry.keyframe == keyframe.number, entry.dts == keyframe.sample.dts {
                return entry.task
            }
            guard state.running < maxDecodes else { throw Failure.busy }
            state.running += 1
            if state.entries[key] == nil, state.entries.count >= maxEntries, let oldest = state.entries.keys.first {
                state.entries[oldest] = nil
            }
            let task = Task { [ffmpeg, timeout, clock, limits, logger] in
                defer { self.state.withLock { $0.running -= 1 } }
                // Once per keyframe, not per request: a refusal is shared like a picture.
                if let refusal = Self.refusal(of: keyframe, limits: limits) {
                    logger.warning("snapshot of '\(UntrustedText.printable(stream))' refused: \(refusal)")
                    throw Failure.decodeFailed(refusal)
                }
                // The MP4 of the keyframe is made here, once per decode, not per request.
                guard let input = keyframe.mp4 else { throw Failure.decodeFailed("the keyframe cannot be written as MP4") }
                return try await Self.decode(input, decoder: Self.decoder(for: keyframe.codec), width: width,
                                             ffmpeg: ffmpeg, limits: limits, timeout: timeout, clock: clock, logger: logger)
            }
            state.entries[key] = Entry(keyframe: keyframe.number, dts: keyframe.sample.dts, task: task)
            return task
        }
        return try await task.value
    }

    /// FFmpeg's decoder for a sample entry: named, so a camera's bytes reach only that one.
    static func decoder(for codec: FourCC?) -> String? {
        switch codec?.description {
        case "avc1", "avc3": "h264"
        case "hev1", "hvc1": "hevc"
        default: nil
        }
    }

    /// The picture a keyframe decodes to, from every sequence parameter set a
    /// decoder of it may use (the init segment's and the sample's own): nil
    /// when the pictures fit `limits`, else why the keyframe is refused.
    /// The width of the keyframe's pictures as its init segment states it; nil when it does not.
    static func pictureWidth(of keyframe: LatestKeyframe) -> Int? {
        (try? InitSegment(parsing: keyframe.initSegment))?.track(keyframe.sample.track)?.width
    }

    static func refusal(of keyframe: LatestKeyframe, limits: SnapshotLimits) -> String? {
        let sets: [SequenceParameterSet]
        do {
            guard let video = try InitSegment(parsing: keyframe.initSegment).track(keyframe.sample.track)?.video else {
                return "the keyframe's track has no H.264 or H.265 configuration"
            }
            sets = try video.sequenceParameterSets(decoding: keyframe.sample.data)
        } catch {
            return "its sequence parameter set cannot be read: \(error)"
        }
        guard !sets.isEmpty else { return "the keyframe comes with no sequence parameter set" }
        for set in sets where set.codedWidth > limits.maxSide || set.codedHeight > limits.maxSide
            || set.codedPixels > limits.maxPixels {
            return "its pictures are \(set.codedWidth)x\(set.codedHeight), more than a snapshot decodes "
                + "(at most \(limits.maxSide) pixels a side and \(limits.maxPixels) in all)"
        }
        return nil
    }

    /// Runs FFmpeg: the MP4 in on its stdin, one JPEG out of its stdout, both
    /// pipes and its stderr on NIO's event loops (no thread waits on them),
    /// its exit awaited on a thread of its own (``ChildProcess/exited()``).
    /// Past `timeout` on `clock` its process group is killed.
    static func decode(_ input: ByteBuffer, decoder: String?, width: Int?, ffmpeg: String,
                       limits: SnapshotLimits = SnapshotLimits(), timeout: Duration,
                       clock: any PipelineClock = SystemClock(), logger: Logger? = nil) async throws -> ByteBuffer {
        guard let decoder else { throw Failure.decodeFailed("no H.264 or H.265 video to decode") }
        let child: ChildProcess
        let pipes: ChildPipes
        do {
            // Never camflow's own environment nor its descriptors: the camera's and the web's
            // passwords and the viewers' sockets stay with camflow.
            child = try ChildProcess(executable: "/usr/bin/setpriv",
                                     arguments: arguments(decoder: decoder, width: width, ffmpeg: ffmpeg, limits: limits),
                                     environment: ChildEnvironment.minimal())
        } catch {
            logger?.error("snapshot: \(error)")
            throw Failure.decodeFailed("the decoder cannot be started")
        }
        do {
            pipes = try await ChildPipes.open(child)
        } catch {
            logger?.error("snapshot: the decoder's pipes: \(error)")
            child.signalGroup(SIGKILL)
            _ = await child.termination()
            throw Failure.decodeFailed("the decoder cannot be started")
        }
        let (output, said, timedOut) = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                do { try await clock.sleep(for: timeout) } catch { return false }
                // Its group: an `ffmpeg` setting naming a script may have started children.
                child.signalGroup(SIGKILL)
                return true
            }
            group.addTask {
                // A decoder that stops reading fails this write (EPIPE), never holds it past its end.
                try? await pipes.stdin.writeAndFlush(input)
                try? await pipes.stdin.close()
                return false
            }
            async let said = read(pipes.stderr, keeping: maxErrorBytes)
            let output = await read(pipes.stdout, keeping: maxJPEGBytes, stopPast: { child.signalGroup(SIGKILL) })
            let errors = await said
            await child.exited()
            // A grandchild holding stdin open without reading must not keep the write waiting.
            pipes.stdin.close(promise: nil)
            group.cancelAll()
            var timedOut = false
            for await fired in group { timedOut = timedOut || fired }
            return (output, errors, timedOut)
        }
        let termination = await child.termination()
        guard termination == .exited(0), output.total <= maxJPEGBytes, output.kept.readableBytes > 2,
              output.kept.getBytes(at: output.kept.readerIndex, length: 2) == [0xFF, 0xD8] else {
            let reason: String
            if timedOut {
                reason = "the decoder took longer than \(timeout)"
            } else if output.total > maxJPEGBytes {
                reason = "the decoder wrote more than \(maxJPEGBytes) bytes"
            } else if case .signalled(let signal) = termination {
                // SIGXCPU: prlimit's CPU bound; SIGKILL, SIGSEGV: the kernel or a crash.
                reason = "the decoder was stopped by signal \(signal)"
            } else if termination == .exited(126) || termination == .exited(127) {
                reason = "the decoder cannot be run (the web node's 'ffmpeg' setting)"
            } else if case .exited(let status) = termination, status != 0 {
                reason = "the decoder failed (exit status \(status))"
            } else {
                reason = "the decoder wrote no JPEG"
            }
            let text = UntrustedText.printable(String(buffer: said.kept), limit: 1000)
            logger?.warning("snapshot: \(reason); \(UntrustedText.printable(ffmpeg)) said: \(text)\(said.total > said.kept.readableBytes ? " (\(said.total) bytes in all)" : "")")
            throw Failure.decodeFailed(reason)
        }
        return output.kept
    }

    /// The command line: FFmpeg under setpriv (the kernel kills it with camflow)
    /// and prlimit (CPU time, address space, no core file), one thread, refusing
    /// pictures past `limits` itself too, and scaling down only.
    static func arguments(decoder: String, width: Int?, ffmpeg: String, limits: SnapshotLimits) -> [String] {
        var arguments = ["--pdeathsig", "KILL", "--", "/usr/bin/prlimit", "--cpu=\(limits.cpuSeconds):\(limits.cpuSeconds + 1)",
                         "--as=\(limits.addressSpace)", "--core=0", "--",
                         ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1", "-filter_threads", "1",
                         "-max_pixels", "\(limits.maxPixels)", "-f", "mp4", "-c:v", decoder, "-i", "pipe:0", "-frames:v", "1"]
        // min(W,iw): a width past the picture's own never makes a bigger picture than the decoded one.
        if let width { arguments += ["-vf", "scale='min(\(width),iw)':-2"] }
        arguments += ["-threads", "1", "-f", "image2pipe", "-c:v", "mjpeg", "-q:v", "3", "pipe:1"]
        return arguments
    }

    /// What a decoder may write to stderr that is kept (for the log); the rest is read and dropped.
    static let maxErrorBytes = 4096
    /// A JPEG larger than this is not one picture of at most `maxPixels`.
    static let maxJPEGBytes = 64 << 20

    /// Reads `channel` to its end, keeping the first `limit` bytes: a child
    /// that writes without end costs time, never memory. `stopPast` is called
    /// once when more than `limit` came.
    static func read(_ channel: NIOAsyncChannel<ByteBuffer, Never>, keeping limit: Int,
                     stopPast: (@Sendable () -> Void)? = nil) async -> (kept: ByteBuffer, total: Int) {
        var kept = ByteBuffer()
        var total = 0
        // An error ends the read like the end of the pipe: the decoder's status says what went wrong.
        try? await channel.executeThenClose { inbound in
            for try await chunk in inbound {
                if total <= limit, total + chunk.readableBytes > limit { stopPast?() }
                total += chunk.readableBytes
                let room = limit - kept.readableBytes
                if room > 0 {
                    kept.writeImmutableBuffer(chunk.getSlice(at: chunk.readerIndex, length: min(room, chunk.readableBytes))
                                              ?? ByteBuffer())
                }
            }
        }
        return (kept, total)
    }
}

/// What one snapshot decode may cost. A picture is refused before FFmpeg runs
/// when a sequence parameter set declares more than `maxSide` or `maxPixels`
/// (FFmpeg's `-max_pixels` checks again); FFmpeg itself runs one thread and
/// under prlimit's bounds.
struct SnapshotLimits: Sendable {
    /// Pixels on either side of a decoded picture.
    var maxSide = 8192
    /// Pixels of a decoded picture: two 4K UHD pictures' worth.
    var maxPixels = 3840 * 2160 * 2
    /// CPU seconds (RLIMIT_CPU): SIGXCPU then, SIGKILL a second later.
    var cpuSeconds = 10
    /// Address space (RLIMIT_AS). A one-threaded FFmpeg decoding the largest
    /// picture allowed peaks below half of it.
    var addressSpace = 1 << 30
}
