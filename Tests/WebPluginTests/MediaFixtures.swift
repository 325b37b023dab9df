import CamflowTesting
import Foundation
import ISOBMFF
import NIOCore

/// The committed MP4 fixtures, split as a camera sends them: the init
/// segment (ftyp + moov), then one buffer per fragment (moof + mdat).
enum MediaFixtures {
    static let directory = repositoryFile("Tests/Fixtures")

    static func split(_ name: String) throws -> (initSegment: ByteBuffer, fragments: [ByteBuffer]) {
        var input = ByteBuffer(bytes: try Data(contentsOf: directory.appendingPathComponent(name)))
        var initSegment = ByteBuffer()
        var fragments: [ByteBuffer] = []
        var moof: ByteBuffer?
        while input.readableBytes >= 8, let size = input.getInteger(at: input.readerIndex, as: UInt32.self),
              let type = input.getString(at: input.readerIndex + 4, length: 4), var box = input.readSlice(length: Int(size)) {
            switch type {
            case "ftyp", "moov": initSegment.writeBuffer(&box)
            case "moof": moof = box
            case "mdat":
                if var fragment = moof {
                    fragment.writeBuffer(&box)
                    fragments.append(fragment)
                    moof = nil
                }
            default: break
            }
        }
        return (initSegment, fragments)
    }

    /// The fixture's fragments played `loops` times, decode times and
    /// sequence numbers carried on as a looped file is.
    static func looped(_ name: String, loops: Int) throws -> (initSegment: ByteBuffer, fragments: [ByteBuffer]) {
        let (initBytes, fragments) = try split(name)
        let initSegment = try InitSegment(parsing: initBytes)
        let parsed = try fragments.map { try Fragment(parsing: $0, initSegment: initSegment) }
        var ends: [UInt32: Int64] = [:]
        for fragment in parsed {
            for sample in fragment.samples { ends[sample.track] = max(ends[sample.track] ?? 0, sample.dts + Int64(sample.duration)) }
        }
        var out: [ByteBuffer] = []
        for loop in 0..<loops {
            for fragment in parsed {
                out.append(fragment.rewritingTimes(sequenceShift: UInt32(loop * parsed.count)) { Int64(loop) * (ends[$0] ?? 0) })
            }
        }
        return (initBytes, out)
    }
}
