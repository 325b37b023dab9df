import ISOBMFF
import NIOCore

/// Feeds one input to the parser the way a stream arrives: cut into chunks
/// whose sizes come from the input's first bytes, then every result pulled,
/// errors included, and every video sample's NAL units walked.
func fuzzOne(_ bytes: UnsafeRawBufferPointer) {
    guard bytes.count > 2 else { return }
    let chunk = Int(bytes[0]) << 8 | Int(bytes[1]) + 1
    var input = ByteBuffer(bytes: bytes.dropFirst(2))
    var parser = StreamingParser(configuration: .init(maxBoxSize: 1 << 20))
    while input.readableBytes > 0 {
        guard let slice = input.readSlice(length: min(chunk, input.readableBytes)) else { break }
        parser.append(slice)
        while true {
            do {
                guard let item = try parser.next() else { break }
                if case .fragment(let fragment) = item, let initSegment = parser.initSegment {
                    for sample in fragment.samples {
                        guard let video = initSegment.track(sample.track)?.video else { continue }
                        let data = fragment.data(of: sample)
                        _ = try? video.summarize(data)
                        _ = try? video.annexB(data, withParameterSets: sample.isSync)
                        _ = video.summarizeAnnexB(data)
                    }
                }
                if case .initSegment(let segment) = item { _ = try? InitSegment(parsing: segment.bytes) }
            } catch {
                _ = error.description
            }
        }
    }
    _ = try? parser.finish()
}

#if FUZZING
// SwiftPM links an executable's entry point as `<module>_main`; under
// libFuzzer that entry hands control to the fuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzOne(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@_cdecl("ISOBMFFFuzz_main")
func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return runFuzzerDriver(&argc, &argv, fuzzerTestOneInput)
}
#else
import Foundation

/// Without libFuzzer: replays the given files (a corpus or a crash) through the fuzz body.
@main
struct ReplayCorpus {
    static func main() throws {
        var count = 0
        for path in CommandLine.arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
            let files = isDirectory.boolValue
                ? try FileManager.default.contentsOfDirectory(atPath: path).map { "\(path)/\($0)" } : [path]
            for file in files {
                let data = try Data(contentsOf: URL(fileURLWithPath: file))
                data.withUnsafeBytes { fuzzOne($0) }
                count += 1
            }
        }
        print("replayed \(count) inputs")
    }
}
#endif
