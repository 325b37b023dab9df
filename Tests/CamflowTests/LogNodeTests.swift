@testable import Camflow
import Testing

/// The `log` node's text lines carry what peers send (an MQTT payload's
/// fields, a camera's text): nothing in them may start a line of its own or
/// reach the terminal as a control sequence.
@Suite struct LogNodeTests {
    @Test func eventFieldsFromAPeer_cannotForgeLinesOrDriveTheTerminal() {
        let hostile = "\u{1B}[31mred\n2026-12-06 fake line\u{1B}]0;pwn\u{07}"
        let packet = Packet.event(Event("alarm\ncam", [(key: "a\u{1B}", value: .string(hostile)),
                                                       (key: "b", value: .string(String(repeating: "x", count: 5000)))]),
                                  stream: "cam\r1")
        let line = LogNode.text(packet)
        #expect(!line.unicodeScalars.contains { $0.properties.generalCategory == .control }, "\(line)")
        #expect(line.contains(#"\u{1B}[31mred\n2026-12-06 fake line"#))
        #expect(line.hasPrefix(#"cam\r1 event"#))
        // A huge value is cut, saying how large it was.
        #expect(line.utf8.count < 1500 && line.contains("(5000 bytes)"))
    }
}
