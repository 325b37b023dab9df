/// libFuzzer targets over what camflow reads from the wire and the disk, in
/// one executable: `mp4` (the streaming MP4 parser), `header` (the ZeroMQ
/// packet header), `clip` (a recording cut into a clip), `index` (a
/// recordings index), `rtp` (RTP headers and payloads), `rtsp` (RTSP
/// messages, SDP, Transport and Digest headers), `stun` (STUN and ICE
/// checks), `rtcp` (RTCP feedback) and `whep` (SDP offers and answers).
/// `make fuzz FUZZ_TARGET=mp4|header|clip|index|rtp|rtsp|stun|rtcp|whep` builds it optimised
/// with libFuzzer and AddressSanitizer and runs one; without `-D FUZZING`
/// it replays corpus files, so the normal build keeps it compiling and the
/// tests replay the checked-in corpus.
let targets: [String: @Sendable (UnsafeRawBufferPointer) -> Void] = [
    "mp4": fuzzParser, "header": fuzzHeader, "clip": fuzzClip, "index": fuzzIndex, "rtp": fuzzRTP,
    "rtsp": fuzzRTSP, "stun": fuzzSTUN, "rtcp": fuzzRTCP, "whep": fuzzWHEP,
]

#if FUZZING
import Glibc

// SwiftPM links an executable's entry point as `<module>_main`; under
// libFuzzer that entry hands control to the fuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// Read once: libFuzzer calls the callback millions of times.
nonisolated(unsafe) let selected: (UnsafeRawBufferPointer) -> Void = {
    let name = getenv("CAMFLOW_FUZZ_TARGET").map { String(cString: $0) } ?? "mp4"
    guard let target = targets[name] else { fatalError("CAMFLOW_FUZZ_TARGET must be one of \(targets.keys.sorted())") }
    return target
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    selected(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@_cdecl("CamflowFuzz_main")
func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return runFuzzerDriver(&argc, &argv, fuzzerTestOneInput)
}
#else
import Foundation

/// Without libFuzzer: `CamflowFuzz TARGET PATH...` replays files or folders
/// (a corpus, a crash) through one target.
@main
struct ReplayCorpus {
    static func main() throws {
        let arguments = CommandLine.arguments.dropFirst()
        guard let name = arguments.first, let target = targets[name] else {
            print("usage: CamflowFuzz \(targets.keys.sorted().joined(separator: "|")) PATH...")
            exit(64)
        }
        var count = 0
        for path in arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                print("no such file: \(path)")
                exit(66)
            }
            let files = isDirectory.boolValue
                ? try FileManager.default.contentsOfDirectory(atPath: path).sorted().map { "\(path)/\($0)" } : [path]
            for file in files {
                let data = try Data(contentsOf: URL(fileURLWithPath: file))
                data.withUnsafeBytes { target($0) }
                count += 1
            }
        }
        print("replayed \(count) inputs through \(name)")
    }
}
#endif
