import NIOCore
import WebRTCProtocol

/// RTCP as a peer sends it after SRTCP: the compound reader, then every
/// packet camflow can write written again, which must read back equal.
func fuzzRTCP(_ bytes: UnsafeRawBufferPointer) {
    guard let packets = try? RTCPCompound.parse(ByteBuffer(bytes: bytes)) else { return }
    var written = ByteBuffer()
    var expected: [RTCPPacket] = []
    for packet in packets {
        switch packet {
        case .other: continue
        case .nack(_, _, let entries):
            let numbers = entries.flatMap(\.sequenceNumbers)
            guard Set(RTCPNACKEntry.covering(numbers).flatMap(\.sequenceNumbers)) == Set(numbers) else {
                fatalError("NACK entries rebuilt from their sequence numbers name others")
            }
        default: break
        }
        do {
            try packet.write(to: &written)
        } catch {
            fatalError("a packet read does not write: \(error)")
        }
        expected.append(packet)
    }
    guard !expected.isEmpty else { return }
    guard let again = try? RTCPCompound.parse(written), again == expected else {
        fatalError("RTCP packets written do not read back equal")
    }
}
