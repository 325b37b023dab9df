import Camflow
import CamflowTesting
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import ISOBMFF
import NIOCore
import Testing
@testable import WebPlugin

/// The snapshot service with the real ffmpeg, or a script in its place that
/// says what the decoder was given: its environment, its limits, whether it
/// ran at all.
@Suite struct SnapshotTests {
    /// A store holding `fixture`'s init segment and first fragment as stream "cam".
    func store(_ fixture: String) throws -> HLSStore {
        let (initBytes, fragments) = try MediaFixtures.split(fixture)
        let store = HLSStore(configuration: .init(), maxStreams: 4)
        store.publish(Packet(kind: .initSegment, stream: "cam", payload: initBytes), wallClock: 0)
        store.publish(Packet(kind: .fragment, stream: "cam", payload: try #require(fragments.first)), wallClock: 0)
        return store
    }

    /// A script standing in for ffmpeg: `body`, then the real one with the same arguments.
    func script(_ body: String) throws -> (path: String, directory: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-snap-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/ffmpeg"
        try "#!/bin/sh\n\(body)\nexec /usr/bin/ffmpeg \"$@\"\n".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return (path, directory)
    }

    func failure(_ body: () async throws -> ByteBuffer) async -> String? {
        do {
            _ = try await body()
            return nil
        } catch SnapshotService.Failure.decodeFailed(let why) {
            return why
        } catch {
            return "\(error)"
        }
    }

    /// A JPEG's size as WxH, from its start-of-frame segment.
    func jpegSize(_ jpeg: ByteBuffer) -> String? {
        let bytes = Array(jpeg.readableBytesView)
        var index = 2
        while index + 9 < bytes.count, bytes[index] == 0xFF {
            let marker = bytes[index + 1]
            if (0xC0...0xC3).contains(marker) {
                return "\(Int(bytes[index + 7]) << 8 | Int(bytes[index + 8]))x\(Int(bytes[index + 5]) << 8 | Int(bytes[index + 6]))"
            }
            index += 2 + (Int(bytes[index + 2]) << 8 | Int(bytes[index + 3]))
        }
        return nil
    }

    @Test func theDecoder_getsAMinimalEnvironment_noDescriptors_andRunsUnderLimits() async throws {
        setenv("CAMFLOW_SNAPSHOT_TEST_PASSWORD", "hunter2", 1)
        // A socket opened without close-on-exec, as libraries do.
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(socket >= 3)
        defer { close(socket) }
        let fake = try script("env > \"$0.env\"; cat /proc/$$/limits > \"$0.limits\"; ls -l /proc/$$/fd/ > \"$0.fds\"; readlink /proc/$$/fd/2 > \"$0.stderr\"")
        defer { try? FileManager.default.removeItem(atPath: fake.directory) }
        let service = SnapshotService(store: try store("h264-fragment-per-frame.mp4"), ffmpeg: fake.path, maxDecodes: 2)
        let jpeg = try await service.jpeg(stream: "cam", width: nil)
        #expect(jpegSize(jpeg) == "320x240")
        let environment = try String(contentsOfFile: fake.path + ".env", encoding: .utf8)
        #expect(!environment.contains("hunter2") && !environment.contains("PASSWORD"), "\(environment)")
        let names = Set(environment.split(separator: "\n").compactMap { $0.split(separator: "=").first.map(String.init) })
        #expect(names.contains("PATH"))
        #expect(names.isSubset(of: Set(ChildEnvironment.passedOn + ["PWD", "SHLVL", "_", "OLDPWD"])), "\(names)")
        let descriptors = try String(contentsOfFile: fake.path + ".fds", encoding: .utf8)
        #expect(!descriptors.contains("socket:"), "\(descriptors)")
        // Once the picture is back, camflow holds none of the decoder's pipes.
        let stderrPipe = try String(contentsOfFile: fake.path + ".stderr", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(stderrPipe.hasPrefix("pipe:["))
        let held = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").filter {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)")) == stderrPipe
        }
        #expect(held.isEmpty, "descriptors \(held) still read the decoder's stderr")
        let limits = try String(contentsOfFile: fake.path + ".limits", encoding: .utf8)
        let row = { (name: String) -> [String] in
            let line = limits.split(separator: "\n").first { $0.hasPrefix(name) } ?? ""
            return line.dropFirst(name.count).split(separator: " ").map(String.init)
        }
        #expect(row("Max cpu time") == ["10", "11", "seconds"], "\(limits)")
        #expect(row("Max address space") == ["\(1 << 30)", "\(1 << 30)", "bytes"], "\(limits)")
        #expect(row("Max core file size") == ["0", "0", "bytes"], "\(limits)")
    }

    @Test(arguments: ["sps-bombs/h264-16000x16000.mp4", "sps-bombs/h265-16000x16000.mp4"])
    func aPictureTooLarge_isRefusedBeforeFFmpegRuns(_ fixture: String) async throws {
        let fake = try script("touch \"$0.ran\"")
        defer { try? FileManager.default.removeItem(atPath: fake.directory) }
        let service = SnapshotService(store: try store(fixture), ffmpeg: fake.path, maxDecodes: 2)
        let started = ContinuousClock.now
        let why = await failure { try await service.jpeg(stream: "cam", width: 320) }
        #expect(why?.contains("16000x16000") == true && why?.contains("16588800") == true, "\(why ?? "decoded")")
        #expect(ContinuousClock.now - started < .seconds(5), "a decode of it took 15 s")
        #expect(!FileManager.default.fileExists(atPath: fake.path + ".ran"), "ffmpeg never ran")
        // The refusal is shared like a picture: asked again, nothing runs.
        #expect(await failure { try await service.jpeg(stream: "cam", width: 320) } == why)
    }

    /// ffmpeg's -max_pixels refuses the picture too, should a keyframe ever pass the SPS check.
    @Test func maxPixels_stopsABombThatReachesFFmpeg() async throws {
        let store = try store("sps-bombs/h264-16000x16000.mp4")
        let keyframe = try #require(store.read("cam") { $0.latestKeyframe })
        let started = ContinuousClock.now
        let why = await failure {
            try await SnapshotService.decode(try #require(keyframe.mp4), decoder: "h264", width: nil, ffmpeg: "ffmpeg",
                                             timeout: .seconds(30))
        }
        let elapsed = ContinuousClock.now - started
        #expect(why == "the decoder failed (exit status 1)", "\(why ?? "decoded")")
        #expect(elapsed < .seconds(3), "without -max_pixels the decode takes 15 s and 3.4 GB: \(elapsed)")
    }

    @Test func aWidthPastThePicture_neverScalesItUp() async throws {
        let service = SnapshotService(store: try store("h264-fragment-per-frame.mp4"), ffmpeg: "ffmpeg", maxDecodes: 2)
        #expect(jpegSize(try await service.jpeg(stream: "cam", width: 7680)) == "320x240")
        #expect(jpegSize(try await service.jpeg(stream: "cam", width: 160)) == "160x120")
    }

    /// Each width was a decode of its own, so stepping through widths past the
    /// picture kept the decoders busy: those widths are the picture itself.
    @Test func widthsAtOrPastThePicture_shareOneDecode() async throws {
        let fake = try script("echo run >> \"$0.runs\"")
        defer { try? FileManager.default.removeItem(atPath: fake.directory) }
        let service = SnapshotService(store: try store("h264-fragment-per-frame.mp4"), ffmpeg: fake.path, maxDecodes: 2)
        for width in [320, 321, 640, 7680] {
            #expect(jpegSize(try await service.jpeg(stream: "cam", width: width)) == "320x240")
        }
        #expect(jpegSize(try await service.jpeg(stream: "cam", width: nil)) == "320x240")
        let runs = try String(contentsOfFile: fake.path + ".runs", encoding: .utf8).split(separator: "\n").count
        #expect(runs == 1, "\(runs) decodes for one picture")
    }

    @Test func aMissingDecoder_isAClearFailure_withoutItsPath() async throws {
        let service = SnapshotService(store: try store("h264-fragment-per-frame.mp4"), ffmpeg: "/nonexistent/secret-dir/ffmpeg",
                                      maxDecodes: 2)
        let why = await failure { try await service.jpeg(stream: "cam", width: nil) }
        #expect(why == "the decoder cannot be run (the web node's 'ffmpeg' setting)", "\(why ?? "decoded")")
    }

    @Test func aDecoderFlooding_stderr_isNotEchoed_andItsOutputIsBounded() async throws {
        let fake = try script("head -c 20000000 /dev/zero | tr '\\0' x >&2; echo '[h264 @ 0x55d1c0ffee00] leak' >&2; exit 1")
        defer { try? FileManager.default.removeItem(atPath: fake.directory) }
        #expect(SnapshotService.maxErrorBytes <= 4096)
        let service = SnapshotService(store: try store("h264-fragment-per-frame.mp4"), ffmpeg: fake.path, maxDecodes: 2)
        let why = await failure { try await service.jpeg(stream: "cam", width: nil) }
        #expect(why == "the decoder failed (exit status 1)", "\(why ?? "decoded")")
    }

    /// The timeout is on the service's clock: the decoder lives until that
    /// clock passes it, then its process group is killed and it is reaped.
    @Test func aHungDecoder_isKilledAtTheTimeout() async throws {
        let fake = try script("echo $$ > \"$0.pid.tmp\"; mv \"$0.pid.tmp\" \"$0.pid\"; exec sleep 600")
        defer { try? FileManager.default.removeItem(atPath: fake.directory) }
        let clock = ManualClock()
        let service = SnapshotService(store: try store("h264-fragment-per-frame.mp4"), ffmpeg: fake.path, maxDecodes: 1,
                                      timeout: .seconds(10), clock: clock)
        let snapshot = Task { await failure { try await service.jpeg(stream: "cam", width: nil) } }
        try await waitUntil("the decoder runs", timeout: .seconds(20)) { FileManager.default.fileExists(atPath: fake.path + ".pid") }
        let pid = try #require(Int32(String(contentsOfFile: fake.path + ".pid", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)))
        defer { kill(pid, SIGKILL) }
        try await clock.waitForSleepers(1, timeout: .seconds(10))
        #expect(kill(pid, 0) == 0, "the decoder was stopped before its timeout")
        let advanced = ContinuousClock.now
        await clock.advance(by: .seconds(10))
        let why = await snapshot.value
        #expect(why?.hasPrefix("the decoder took longer than") == true, "\(why ?? "decoded")")
        #expect(ContinuousClock.now - advanced < .seconds(5))
        #expect(kill(pid, 0) != 0, "the sleeping decoder is gone")
    }
}
