import NIOCore
import WebRTCProtocol

/// A WHEP offer as a player POSTs it (the first byte picks the stream's
/// codec), negotiated and answered. The answer must read back as SDP with
/// the offer's sections in order, exactly one of them live, carrying the
/// chosen payload type, and every other one rejected.
func fuzzWHEP(_ bytes: UnsafeRawBufferPointer) {
    guard let first = bytes.first else { return }
    let codecs: [WHEPStreamCodec] = [
        .h264(H264ProfileLevel(profileIDC: 0x42, constraints: 0xE0, levelIDC: 0x1F)),
        .h264(H264ProfileLevel(profileIDC: 0x4D, constraints: 0x00, levelIDC: 0x1F)),
        .h264(H264ProfileLevel(profileIDC: 0x64, constraints: 0x00, levelIDC: 0x28)),
        .h265,
    ]
    guard let offer = try? SDPOffer(parsing: ByteBuffer(bytes: bytes.dropFirst())),
          let negotiation = try? WHEPNegotiation(offer: offer, codec: codecs[Int(first) % codecs.count]) else { return }
    let parameters = WHEPAnswerParameters(
        sessionID: UInt64(first) << 56, credentials: try! ICECredentials(ufrag: "camFLOW1", password: "abcdefghijklmnopqrstuvwx"),
        fingerprint: [UInt8](repeating: 0xAB, count: 32), candidates: [try! WHEPCandidate(address: "127.0.0.1", port: 8189)],
        ssrc: 1, cname: "cname", msid: ("s", "t"))
    guard let answer = try? negotiation.answer(parameters) else { fatalError("an accepted offer could not be answered") }
    let read: SDPOffer
    do {
        read = try SDPOffer(parsing: answer)
    } catch {
        fatalError("camflow's answer does not read back: \(error)")
    }
    guard read.sections.count == offer.sections.count,
          read.sections.map(\.mid) == offer.sections.map(\.mid),
          read.sections.filter({ $0.port != 0 }).count == 1,
          read.sections[negotiation.videoSection].formats == [String(negotiation.payloadType)],
          read.sections[negotiation.videoSection].direction == .sendonly,
          read.sections[negotiation.videoSection].rtpMap(negotiation.payloadType) != nil,
          read.bundleGroups.flatMap({ $0 }) == (negotiation.bundled ? [offer.sections[negotiation.videoSection].mid!] : [])
    else { fatalError("camflow's answer is not what it negotiated") }
}
