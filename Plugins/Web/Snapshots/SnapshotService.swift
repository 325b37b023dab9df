import Foundation
import ISOBMFF
import NIOCore
import NIOPosix
import Synchronization

/// `/snapshot/{stream}.jpg`: the latest keyframe decoded to JPEG by an
/// FFmpeg child process. One decode per keyframe and width however many
/// ask (later requests share it), at most `maxDecodes` at once (more are
/// answered 503), and a cache of the latest pictures only.
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
    private let store: HLSStore
    private let state = Mutex(State())

    init(store: HLSStore, ffmpeg: String, maxDecodes: Int, maxEntries: Int = 64, timeout: Duration = .seconds(10)) {
        self.store = store
        self.ffmpeg = ffmpeg
        self.maxDecodes = maxDecodes
        self.maxEntries = maxEntries
        self.timeout = timeout
        // A decoder that exits early must not kill camflow as it is being written to.
        signal(SIGPIPE, SIG_IGN)
    }

    /// The JPEG of `stream`'s latest keyframe, scaled to `width` when given.
    func jpeg(stream: String, width: Int?) async throws -> ByteBuffer {
        guard let keyframe = store.read(stream, { $0.latestKeyframe }) else { throw Failure.noKeyframe }
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
            let task = Task { [ffmpeg, timeout] in
                defer { self.state.withLock { $0.running -= 1 } }
                // The MP4 of the keyframe is made here, once per decode, not per request.
                guard let input = keyframe.mp4 else { throw Failure.decodeFailed("the keyframe cannot be written as MP4") }
                return try await Self.decode(input, decoder: Self.decoder(for: keyframe.codec), width: width,
                                             ffmpeg: ffmpeg, timeout: timeout)
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

    /// Runs FFmpeg on NIO's thread pool: the MP4 in on stdin, one JPEG out on stdout.
    static func decode(_ input: ByteBuffer, decoder: String?, width: Int?, ffmpeg: String, timeout: Duration) async throws -> ByteBuffer {
        try await NIOThreadPool.singleton.runIfActive {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            guard let decoder else { throw Failure.decodeFailed("no H.264 or H.265 video to decode") }
            var arguments = [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "mp4", "-c:v", decoder, "-i", "pipe:0",
                             "-frames:v", "1"]
            if let width { arguments += ["-vf", "scale=\(width):-2"] }
            arguments += ["-f", "image2pipe", "-c:v", "mjpeg", "-q:v", "3", "pipe:1"]
            process.arguments = arguments
            let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
            process.standardInput = stdin
            process.standardOutput = stdout
            process.standardError = stderr
            do {
                try process.run()
            } catch {
                throw Failure.decodeFailed("cannot start \(ffmpeg): \(error.localizedDescription)")
            }
            let bytes = Data(input.readableBytesView)
            DispatchQueue.global().async {
                try? stdin.fileHandleForWriting.write(contentsOf: bytes)
                try? stdin.fileHandleForWriting.close()
            }
            let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds) {
                guard process.isRunning else { return }
                process.terminate()
                // One that ignores SIGTERM is killed: a decode never holds a thread for good.
                DispatchQueue.global().asyncAfter(deadline: .now() + 2) {
                    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                }
            }
            let errors = DispatchQueue(label: "camflow.snapshot.stderr")
            let errorText = Mutex(Data())
            errors.async { errorText.withLock { $0 = stderr.fileHandleForReading.readDataToEndOfFile() } }
            let output = stdout.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            errors.sync {}
            guard process.terminationStatus == 0, output.count > 2, output.prefix(2) == Data([0xFF, 0xD8]) else {
                let said = String(decoding: errorText.withLock { $0 }.prefix(300), as: UTF8.self)
                    .split(separator: "\n").last.map(String.init) ?? "exit status \(process.terminationStatus)"
                throw Failure.decodeFailed(said)
            }
            return ByteBuffer(bytes: output)
        }
    }
}
