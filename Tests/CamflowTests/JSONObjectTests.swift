import Camflow
import Foundation
import NIOCore
import Testing

/// The JSON camflow writes itself (headers, log lines) must parse back to
/// what went in, whatever a stream or event name holds.
@Suite struct JSONObjectTests {
    private func parsed(_ text: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test func everyControlCharacterQuoteAndBackslash_parsesBackToTheSameString() throws {
        let awkward = String(decoding: (0..<0x80).map { UInt8($0) }, as: UTF8.self) + "é🎥\u{2028}\"\\"
        var object = JSONObject()
        object.append("name", awkward)
        object.append("n", Int64.min)
        object.append("m", Int64.max)
        let back = try parsed(object.text)
        #expect(back["name"] as? String == awkward)
        #expect((back["n"] as? NSNumber)?.int64Value == Int64.min)
        #expect((back["m"] as? NSNumber)?.int64Value == Int64.max)
    }

    @Test func aHeaderWithTheLongestEscapedNamesAndExtremeNumbers_fitsAndParses() throws {
        // Every byte of these names escapes to six: the reservation's worst case.
        let name = String(repeating: "\u{01}", count: PacketHeader.Limits.nameBytes)
        let packet = Packet(kind: .frame, stream: name, sequence: .max, payload: ByteBuffer(), receivedAt: .max, discontinuity: true,
                            media: MediaInfo(track: .max, codec: name, timescale: .max, dts: .min, pts: .max, duration: .min,
                                             keyframe: false, width: .min, height: .max, trackKind: .video))
        let back = try parsed(PacketHeader.json(packet))
        #expect(back["stream"] as? String == name && back["codec"] as? String == name)
        #expect((back["dts"] as? NSNumber)?.int64Value == .min && (back["height"] as? NSNumber)?.int64Value == .max)
        #expect(back["track_kind"] as? String == "video" && back["keyframe"] as? Bool == false)
        let event = Packet.event(Event(name, [(name, .string(name))]), stream: name)
        let eventBack = try parsed(PacketHeader.json(event))
        #expect(eventBack["event"] as? String == name)
        #expect((eventBack["fields"] as? [String: Any])?[name] as? String == name)
    }
}
