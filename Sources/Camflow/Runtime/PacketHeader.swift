import Foundation
public import NIOCore

/// The JSON header that describes a packet outside the process: the second
/// frame of a ZeroMQ message, a `log` line in JSON. Fields: stream, kind,
/// sequence, codec, timescale, dts, pts, duration, keyframe, width, height,
/// track, discontinuity, received_at_ns; events add `event` (the name) and
/// `fields` (an object).
public enum PacketHeader {
    /// The header of `packet` as JSON text.
    public static func json(_ packet: Packet, extra: (inout JSONObject) -> Void = { _ in }) -> String {
        var object = JSONObject()
        write(packet, into: &object)
        extra(&object)
        return object.text
    }

    /// Writes the header of `packet` into `object` (reset first when reused).
    public static func write(_ packet: Packet, into object: inout JSONObject) {
        object.append("stream", packet.stream)
        object.append("kind", packet.kind.name)
        object.append("sequence", Int64(bitPattern: packet.sequence))
        if let media = packet.media {
            object.append("codec", media.codec)
            if media.timescale > 0 { object.append("timescale", Int64(media.timescale)) }
            object.append("dts", media.dts)
            object.append("pts", media.pts)
            object.append("duration", media.duration)
            object.append("keyframe", media.keyframe)
            object.append("width", media.width.map(Int64.init))
            object.append("height", media.height.map(Int64.init))
            if media.track != 0 { object.append("track", Int64(media.track)) }
        }
        if packet.discontinuity { object.append("discontinuity", true) }
        object.append("received_at_ns", Int64(bitPattern: packet.receivedAt))
        if let event = packet.event {
            object.append("event", event.name)
            var fields = JSONObject()
            for (key, value) in event.fields { fields.append(key, value) }
            object.append("fields", object: fields)
        }
    }

    /// Why a header could not be read.
    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// A packet from a header and its payload.
    public static func packet(header: ByteBuffer, payload: ByteBuffer) throws(Invalid) -> Packet {
        let data = Data(header.readableBytesView)
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw Invalid(description: "the header is not a JSON object")
        }
        guard let stream = object["stream"] as? String, !stream.isEmpty else {
            throw Invalid(description: "the header has no 'stream'")
        }
        guard let kindName = object["kind"] as? String, let kind = PacketKind(name: kindName) else {
            throw Invalid(description: "the header has no valid 'kind'")
        }
        func int(_ key: String) -> Int64? { (object[key] as? NSNumber)?.int64Value }
        var media: MediaInfo?
        if object["codec"] != nil || object["dts"] != nil || object["keyframe"] != nil || object["timescale"] != nil {
            media = MediaInfo(
                track: UInt32(truncatingIfNeeded: int("track") ?? 0), codec: object["codec"] as? String,
                timescale: UInt32(truncatingIfNeeded: int("timescale") ?? 0), dts: int("dts"), pts: int("pts"),
                duration: int("duration"), keyframe: (object["keyframe"] as? NSNumber)?.boolValue,
                width: int("width").map(Int.init), height: int("height").map(Int.init))
        }
        var event: Event?
        if let name = object["event"] as? String {
            var fields: [(key: String, value: EventValue)] = []
            for (key, value) in ((object["fields"] as? [String: Any]) ?? [:]).sorted(by: { $0.key < $1.key }) {
                switch value {
                case let text as String: fields.append((key, .string(text)))
                case let number as NSNumber:
                    switch String(cString: number.objCType) {
                    case "d", "f": fields.append((key, .double(number.doubleValue)))
                    case "c", "B": fields.append((key, .bool(number.boolValue)))
                    default: fields.append((key, .int(number.int64Value)))
                    }
                default: continue
                }
            }
            event = Event(name, fields)
        }
        return Packet(kind: kind, stream: stream, sequence: UInt64(bitPattern: int("sequence") ?? 0), payload: payload,
                      receivedAt: MonotonicClock.now(), discontinuity: (object["discontinuity"] as? Bool) ?? false,
                      media: media, event: event)
    }
}
