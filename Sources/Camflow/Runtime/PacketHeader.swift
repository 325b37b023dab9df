import Foundation
public import NIOCore

/// The JSON header that describes a packet outside the process: the second
/// frame of a ZeroMQ message, a `log` line in JSON. Fields: stream, kind,
/// sequence, codec, timescale, dts, pts, duration, keyframe, width, height,
/// track, track_kind, discontinuity, received_at_ns; events add `event` (the name) and
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
    /// Everything but an event's fields goes through one reservation: this
    /// runs for every packet `zmq-publish` sends and `log` prints as JSON.
    public static func write(_ packet: Packet, into object: inout JSONObject) {
        let media = packet.media
        // Keys, numbers and booleans take less than this; the strings add their worst case.
        var bound = 512 + JSONFieldWriter.quotedBound(packet.stream)
        if let codec = media?.codec { bound += JSONFieldWriter.quotedBound(codec) }
        if let name = packet.event?.name { bound += JSONFieldWriter.quotedBound(name) }
        object.writeFields(reserving: bound) { out in
            out.field("stream"); out.string(packet.stream)
            out.field("kind"); out.string(packet.kind.name)
            out.field("sequence"); out.decimal(Int64(bitPattern: packet.sequence))
            if let media {
                if let codec = media.codec { out.field("codec"); out.string(codec) }
                if media.timescale > 0 { out.field("timescale"); out.decimal(Int64(media.timescale)) }
                if let dts = media.dts { out.field("dts"); out.decimal(dts) }
                if let pts = media.pts { out.field("pts"); out.decimal(pts) }
                if let duration = media.duration { out.field("duration"); out.decimal(duration) }
                if let keyframe = media.keyframe { out.field("keyframe"); out.bool(keyframe) }
                if let width = media.width { out.field("width"); out.decimal(Int64(width)) }
                if let height = media.height { out.field("height"); out.decimal(Int64(height)) }
                if media.track != 0 { out.field("track"); out.decimal(Int64(media.track)) }
                if let kind = media.trackKind { out.field("track_kind"); out.string(kind.rawValue) }
            }
            if packet.discontinuity { out.field("discontinuity"); out.bool(true) }
            out.field("received_at_ns"); out.decimal(Int64(bitPattern: packet.receivedAt))
            if let name = packet.event?.name { out.field("event"); out.string(name) }
        }
        if let event = packet.event {
            var fields = JSONObject()
            for (key, value) in event.fields { fields.append(key, value) }
            object.append("fields", object: fields)
        }
    }

    /// Why a header could not be read.
    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Limits on what a header from outside may hold. The header comes from
    /// anyone who can reach a ZeroMQ socket: every field is checked for its
    /// type and range before a packet is built, so a wrong value is an error
    /// here, never a trap or a silent wrap further down the pipeline.
    public enum Limits {
        /// The largest header read, in bytes.
        public static let headerBytes = 64 << 10
        /// The longest stream name, codec string or event name, in bytes.
        public static let nameBytes = 256
        /// The most event fields.
        public static let eventFields = 256
        /// The longest string value of an event field, in bytes.
        public static let fieldBytes = 4096
        /// The largest duration, in timescale units: 2^40 is 127 days at 100 kHz.
        public static let duration: Int64 = 1 << 40
    }

    /// A packet from a header and its payload.
    public static func packet(header: ByteBuffer, payload: ByteBuffer) throws(Invalid) -> Packet {
        guard header.readableBytes <= Limits.headerBytes else {
            throw Invalid(description: "the header has \(header.readableBytes) bytes, more than \(Limits.headerBytes)")
        }
        let wire: WireHeader
        do {
            wire = try JSONDecoder().decode(WireHeader.self, from: Data(header.readableBytesView))
        } catch let error as DecodingError {
            throw Invalid(description: describe(error))
        } catch {
            throw Invalid(description: "the header is not a JSON object")
        }
        let stream = try name(wire.stream, "stream")
        guard let kind = PacketKind(name: wire.kind) else {
            throw Invalid(description: "the header's 'kind' is '\(UntrustedText.printable(wire.kind, limit: 32))', not one of init, fragment, frame, event, bytes")
        }
        var media: MediaInfo?
        // Media fields exactly when the writer would have written some: a header that reads back
        // after being written again is the same (a fuzzer found `timescale: 0` alone did not).
        if wire.codec != nil || wire.dts != nil || wire.pts != nil || wire.duration != nil || wire.keyframe != nil
            || (wire.timescale ?? 0) != 0 || wire.width != nil || wire.height != nil || (wire.track ?? 0) != 0
            || wire.track_kind != nil {
            var codec: String?
            if let text = wire.codec { codec = try name(text, "codec") }
            media = MediaInfo(
                track: try ranged(wire.track, "track", 0...Int64(UInt32.max)).map(UInt32.init) ?? 0,
                codec: codec,
                timescale: try ranged(wire.timescale, "timescale", 0...Int64(UInt32.max)).map(UInt32.init) ?? 0,
                dts: wire.dts, pts: wire.pts,
                duration: try ranged(wire.duration, "duration", 0...Limits.duration),
                keyframe: wire.keyframe,
                width: try ranged(wire.width, "width", 0...65535).map(Int.init),
                height: try ranged(wire.height, "height", 0...65535).map(Int.init),
                trackKind: try trackKind(wire.track_kind))
        }
        var event: Event?
        if let eventName = wire.event {
            let fields = wire.fields ?? [:]
            guard fields.count <= Limits.eventFields else {
                throw Invalid(description: "the header's event has \(fields.count) fields, more than \(Limits.eventFields)")
            }
            var values: [(key: String, value: EventValue)] = []
            for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
                let key = try name(key, "event field name")
                switch value {
                case .value(.string(let text)) where text.utf8.count > Limits.fieldBytes:
                    throw Invalid(description: "the event field '\(key)' has more than \(Limits.fieldBytes) bytes")
                case .value(let scalar): values.append((key, scalar))
                case .unsupported: continue
                }
            }
            event = Event(try name(eventName, "event"), values)
        }
        return Packet(kind: kind, stream: stream, sequence: UInt64(bitPattern: wire.sequence ?? 0), payload: payload,
                      receivedAt: MonotonicClock.now(), discontinuity: wire.discontinuity ?? false,
                      media: media, event: event)
    }

    /// A name from outside: not empty, not too long, no control characters (they would forge log lines).
    /// `video` or `audio`; anything else is refused, naming the field.
    private static func trackKind(_ text: String?) throws(Invalid) -> TrackKind? {
        guard let text else { return nil }
        guard let kind = TrackKind(rawValue: text) else {
            throw Invalid(description: "the header's 'track_kind' is '\(UntrustedText.printable(text, limit: 32))', not video or audio")
        }
        return kind
    }

    private static func name(_ value: String, _ field: String) throws(Invalid) -> String {
        guard !value.isEmpty, value.utf8.count <= Limits.nameBytes,
              !value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw Invalid(description: "the header's '\(field)' must be 1 to \(Limits.nameBytes) bytes without control characters")
        }
        return value
    }

    private static func ranged(_ value: Int64?, _ field: String, _ range: ClosedRange<Int64>) throws(Invalid) -> Int64? {
        guard let value else { return nil }
        guard range.contains(value) else {
            throw Invalid(description: "the header's '\(field)' is \(value), outside \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            if context.codingPath.isEmpty { return "the header is not a JSON object" }
            let expected = type == Int64.self ? "a whole number that fits 64 bits"
                : type == Bool.self ? "true or false" : type == String.self ? "a string" : "\(type)"
            return "the header's '\(path(context))' must be \(expected)"
        case .keyNotFound(let key, _):
            return "the header has no '\(key.stringValue)'"
        case .dataCorrupted:
            return "the header is not a JSON object"
        @unknown default:
            return "the header is not a JSON object"
        }
    }

    private static func path(_ context: DecodingError.Context) -> String {
        context.codingPath.map(\.stringValue).joined(separator: ".")
    }
}

/// The header as it travels: every field typed, so that JSONDecoder refuses
/// a number where a string belongs, a fraction or 1e300 where a 64-bit
/// integer belongs, and `true` where a number belongs.
private struct WireHeader: Decodable {
    var stream: String
    var kind: String
    @WireInteger var sequence: Int64?
    var codec: String?
    @WireInteger var timescale: Int64?
    @WireInteger var dts: Int64?
    @WireInteger var pts: Int64?
    @WireInteger var duration: Int64?
    var keyframe: Bool?
    @WireInteger var width: Int64?
    @WireInteger var height: Int64?
    @WireInteger var track: Int64?
    var track_kind: String?
    var discontinuity: Bool?
    var event: String?
    var fields: [String: WireFieldValue]?
}

/// An optional 64-bit integer field. JSONDecoder refuses `1.5` or `1e300`
/// for an Int64 as corrupt data without saying which key; this says it as
/// a type mismatch at the key, so the error names the field.
@propertyWrapper
private struct WireInteger: Decodable {
    var wrappedValue: Int64?

    init(wrappedValue: Int64?) { self.wrappedValue = wrappedValue }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            wrappedValue = nil
        } else if let value = try? container.decode(Int64.self) {
            wrappedValue = value
        } else {
            throw DecodingError.typeMismatch(Int64.self, .init(codingPath: decoder.codingPath,
                                                               debugDescription: "not a 64-bit integer"))
        }
    }
}

extension KeyedDecodingContainer {
    /// An absent key leaves a ``WireInteger`` nil, as for a plain optional.
    fileprivate func decode(_ type: WireInteger.Type, forKey key: Key) throws -> WireInteger {
        try decodeIfPresent(type, forKey: key) ?? WireInteger(wrappedValue: nil)
    }
}

/// An event field's value: a scalar, or something camflow's events never
/// hold (array, object, null), which is passed over.
private enum WireFieldValue: Decodable {
    case value(EventValue)
    case unsupported

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            self = .value(.string(text))
        } else if let flag = try? container.decode(Bool.self) {
            self = .value(.bool(flag))
        } else if let whole = try? container.decode(Int64.self) {
            self = .value(.int(whole))
        } else if let number = try? container.decode(Double.self) {
            self = .value(.double(number))
        } else {
            self = .unsupported
        }
    }
}

extension EventValue {
    /// The string, number and boolean members of a JSON object, sorted by
    /// key (arrays, objects and nulls are passed over); nil when `json` is
    /// not a JSON object. For payloads from outside: MQTT messages, alarms.
    public static func scalarMembers(ofJSONObject json: ByteBuffer) -> [(key: String, value: EventValue)]? {
        guard let members = try? JSONDecoder().decode([String: WireFieldValue].self, from: Data(json.readableBytesView)) else { return nil }
        return members.keys.sorted().compactMap { key in
            guard case .value(let value)? = members[key] else { return nil }
            return (key, value)
        }
    }
}
