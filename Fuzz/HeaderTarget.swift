import Camflow
import NIOCore

/// The ZeroMQ packet header decoder: whatever a peer sends is refused with
/// a reason or becomes a packet whose header, written again, reads back
/// to the same fields.
func fuzzHeader(_ bytes: UnsafeRawBufferPointer) {
    let header = ByteBuffer(bytes: bytes)
    guard let packet = try? PacketHeader.packet(header: header, payload: ByteBuffer()) else { return }
    let again: Packet
    do {
        again = try PacketHeader.packet(header: ByteBuffer(string: PacketHeader.json(packet)), payload: ByteBuffer())
    } catch {
        fatalError("a header camflow accepted does not read back once written: \(error)")
    }
    precondition(again.stream == packet.stream && again.kind == packet.kind && again.sequence == packet.sequence
                 && again.media == packet.media && again.event?.name == packet.event?.name,
                 "a header changed on its way through camflow")
}
