import Camflow
import Testing

/// Passwords holding the characters that end other parts of a URL.
@Suite struct ConfigRedactionTests {
    static let passwords = ["pa/ss", "p?ss", "p#ss", "p@ss", "p:ss", "a/b?c#d@e:f", "x@y/z@w"]

    @Test(arguments: passwords) func aURLPassword_isMaskedToTheLastAt(_ password: String) {
        let masked = Redaction.url("wss://admin:\(password)@192.0.2.1:443/ws?x=1")
        #expect(masked == "wss://admin:***@192.0.2.1:443/ws?x=1")
        // In a log line, among other words and URLs.
        let log = Redaction.url("camera ws://admin:\(password)@cam/ws failed; next http://cam2/snap.jpg")
        #expect(log == "camera ws://admin:***@cam/ws failed; next http://cam2/snap.jpg")
    }

    @Test(arguments: passwords) func quotedPipelineLines_hideTheWholePassword(_ password: String) {
        let flow = Redaction.line("  camera: { type: instar-camera, url: \"ws://admin:\(password)@cam/ws\", port: 80 }")
        #expect(flow == "  camera: { type: instar-camera, url: \"ws://admin:***@cam/ws\", port: 80 }")
        let block = Redaction.line("    url: ws://admin:\(password)@cam/ws")
        #expect(block == "    url: ws://admin:***@cam/ws")
        let key = Redaction.line("  cam: { type: x, password: \"\(password), }\", port: 80 }")
        #expect(key == "  cam: { type: x, password: ***, port: 80 }")
        let blockKey = Redaction.line("    password: \(password) z")
        #expect(blockKey == "    password: ***")
    }

    @Test func aQuotedURLWithSpaces_isMaskedToItsClosingQuote() {
        #expect(Redaction.url(#"url: "ws://u:p w@cam/ws", x: 1"#) == #"url: "ws://u:***@cam/ws", x: 1"#)
        #expect(Redaction.url(#"{"url":"ws://u:p\"q@cam/ws"}"#) == #"{"url":"ws://u:***@cam/ws"}"#)
    }

    @Test func referencesStayVisible_defaultsDoNot() {
        #expect(Redaction.line("    password: \"${INSTAR_PASSWORD}\"") == "    password: \"${INSTAR_PASSWORD}\"")
        #expect(Redaction.line("    password: ${PW:-hunter2}") == "    password: ***")
        #expect(Redaction.line("    password: ${PW}tail") == "    password: ***")
    }

    @Test(arguments: passwords) func errorMessages_neverQuoteThePassword(_ password: String) {
        let line = "  cam: { type: instar-camera, url: \"ws://admin:\(password)@cam/ws\", colour: red }"
        let error = ConfigError("unknown option 'colour'", at: SourceLocation(file: "p.yaml", line: 3, column: 60, lineText: line))
        #expect(!error.description.contains(password), "\(error)")
        #expect(error.description.contains("ws://admin:***@cam/ws"), "\(error)")
    }
}
