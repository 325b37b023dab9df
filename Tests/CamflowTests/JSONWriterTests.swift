@testable import Camflow
import Foundation
import NIOCore
import Testing

/// Every JSON writer emits text a real parser accepts: numbers no JSON can
/// hold (infinity, NaN) become null, numbers near the top of Double's range
/// stay numbers, and strings escape whatever they hold.
@Suite struct JSONWriterTests {
    static let extremes: [Double] = [.infinity, -.infinity, .nan, 1e303, -1e303, .greatestFiniteMagnitude,
                                     -.greatestFiniteMagnitude, 1.8e302, 1e15, 123456789012345.5, .leastNonzeroMagnitude,
                                     -0.0, 0.1, 2.5e-7]
    static let odd = "a\u{0}b\u{1f}\u{7f}\"\\\n\r\t\u{2028}\u{2029}é🎥\u{feff}"

    private func parsed(_ text: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not JSON: \(text)")
    }

    /// A finite value reads back within the six fraction digits written; a non-finite one reads back as null.
    private func check(_ value: Any?, _ expected: Double) {
        if expected.isFinite {
            let back = (value as? NSNumber)?.doubleValue
            #expect(back.map { abs($0 - expected) <= max(5e-7, abs(expected) * 1e-15) } == true, "\(expected) read back as \(String(describing: value))")
        } else {
            #expect(value is NSNull, "\(expected) read back as \(String(describing: value))")
        }
    }

    @Test func jsonObject_extremeNumbersAndOddStrings_parse() throws {
        for value in Self.extremes {
            var object = JSONObject()
            object.append("v", value)
            object.append(Self.odd, Self.odd)
            object.append("e", EventValue.double(value))
            let back = try parsed(object.text)
            check(back["v"], value)
            check(back["e"], value)
            #expect(back[Self.odd] as? String == Self.odd)
        }
    }

    @Test func formatted_neverWritesInfinityForAFiniteValue() {
        for value in Self.extremes where value.isFinite {
            for digits in [0, 1, 3, 6] {
                let text = value.formatted(maxFractionDigits: digits)
                #expect(Double(text).map { $0.isFinite } == true, "\(value) with \(digits) digits: \(text)")
            }
        }
    }

    @Test func packetHeader_eventFieldsOfEveryExtreme_parse() throws {
        let fields = Self.extremes.enumerated().map { (key: "f\($0.offset)", value: EventValue.double($0.element)) }
        let packet = Packet.event(Event(Self.odd, fields + [(Self.odd, .string(Self.odd))]), stream: Self.odd)
        let back = try parsed(PacketHeader.json(packet))
        let parsedFields = try #require(back["fields"] as? [String: Any])
        for (index, value) in Self.extremes.enumerated() { check(parsedFields["f\(index)"], value) }
        #expect(parsedFields[Self.odd] as? String == Self.odd)
        #expect(back["stream"] as? String == Self.odd && back["event"] as? String == Self.odd)
    }

    @Test func recordingIndexLine_extremeTimes_parseAndReadBack() throws {
        for value in Self.extremes {
            let entry = RecordingIndexEntry(path: Self.odd, stream: Self.odd, start: value, end: value, wallStart: 1.7e9,
                                            keyframes: 1, fragments: 1, bytes: 1, reason: Self.odd)
            let back = try parsed(entry.jsonLine)
            check(back["start"], value)
            check(back["end"], value)
            let read = try #require(RecordingIndexEntry(jsonLine: entry.jsonLine))
            #expect(read.path == Self.odd && read.reason == Self.odd)
        }
    }
}
