import ISOBMFF
import NIOCore

/// The clip cutter fed a recording file's bytes the way the web sink reads
/// them: parsed in chunks, every fragment handed to the cutter, parse
/// errors ending the file. The first four bytes choose the range (start
/// 0-16 s into the file, 1/8 s to 32 s long), the chunk size, and whether
/// the same bytes follow as a second file (joined on at a later wall time).
/// What the cutter writes must parse again without an error.
func fuzzClip(_ bytes: UnsafeRawBufferPointer) {
    guard bytes.count > 4 else { return }
    let start = 1000 + Double(bytes[0]) / 16
    let end = start + Double(bytes[1]) / 8 + 0.125
    let chunk = Int(bytes[2]) << 4 + 1
    let files = bytes[3] & 0x80 != 0 ? [1000.0, 1000 + Double(bytes[3] & 0x7f) / 8] : [1000.0]
    let file = ByteBuffer(bytes: bytes.dropFirst(4))
    // Small limits, so the fuzzer reaches them with small inputs.
    let configuration = StreamingParser.Configuration(maxBoxSize: 1 << 16, maxSamplesPerFragment: 256, maxTracks: 4)
    var cutter = ClipCutter(start: start, end: end, maxGOPBytes: 1 << 14)
    var out = ByteBuffer()
    files: for wallStart in files where !cutter.done {
        cutter.beginFile(wallStart: wallStart)
        var parser = StreamingParser(configuration: configuration)
        var input = file
        while input.readableBytes > 0, !cutter.done {
            guard let slice = input.readSlice(length: min(chunk, input.readableBytes)) else { break }
            parser.append(slice)
            do {
                while let item = try parser.next(), !cutter.done {
                    switch item {
                    case .initSegment(let segment): _ = cutter.take(initSegment: segment.bytes, parsed: segment)
                    case .fragment(let fragment):
                        for var buffer in try cutter.take(fragment: fragment) { out.writeBuffer(&buffer) }
                    case .skipped: break
                    }
                }
            } catch {
                // As the web sink does: a file that stops making sense ends the clip.
                break files
            }
        }
    }
    for var buffer in cutter.finish() { out.writeBuffer(&buffer) }
    guard out.readableBytes > 0 else { return }
    var check = StreamingParser(configuration: .init(maxBoxSize: 1 << 24))
    check.append(out)
    var initSegments = 0
    do {
        while let item = try check.next() {
            if case .initSegment = item { initSegments += 1 }
            if case .fragment = item { precondition(initSegments == 1, "a clip's fragment before its init segment") }
        }
        try check.finish()
    } catch {
        fatalError("a clip the cutter wrote does not parse: \(error)")
    }
    precondition(initSegments == 1, "a clip holds \(initSegments) init segments")
}
