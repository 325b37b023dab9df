import Camflow
import NIOCore
import Testing

@Suite struct RedactionTests {
    @Test func urlPasswordIsMasked() {
        #expect(Redaction.url("wss://admin:hunter2@192.0.2.1:443/ws") == "wss://admin:***@192.0.2.1:443/ws")
        #expect(Redaction.url("ws://camera/ws?x=a@b") == "ws://camera/ws?x=a@b")
        #expect(Redaction.url("ws://admin@camera/ws") == "ws://admin@camera/ws")
        #expect(Redaction.url("ws://cam/ws?user=admin&pwd=hunter2&x=1") == "ws://cam/ws?user=admin&pwd=***&x=1")
        #expect(Redaction.url("ws://cam/ws?PWD=a&Password=b&api_token=c&token=d#top")
            == "ws://cam/ws?PWD=***&Password=***&api_token=***&token=***#top")
        #expect(Redaction.url("ws://a:b@cam:80/ws?pass=x") == "ws://a:***@cam:80/ws?pass=***")
    }

    @Test func peerTextIsCutAndEscaped() {
        #expect(UntrustedText.printable("error: \u{1B}[31mred\nforged") == "error: \\u{1B}[31mred\\nforged")
        let long = UntrustedText.printable(String(repeating: "x", count: 1000), limit: 10)
        #expect(long == "xxxxxxxxxx… (1000 bytes)")
        #expect(UntrustedText.printable(ByteBuffer(repeating: 0x41, count: 1 << 20), limit: 4) == "AAAA… (1048576 bytes)")
    }

    @Test func passwordValuesInQuotedLinesAreMasked() {
        #expect(Redaction.line("    password: hunter2") == "    password: ***")
        #expect(Redaction.line("  cam: { type: x, password: hunter2, port: 80 }")
            == "  cam: { type: x, password: ***, port: 80 }")
        #expect(Redaction.line("    password: ${INSTAR_PASSWORD}") == "    password: ${INSTAR_PASSWORD}")
        #expect(Redaction.line("    url: ws://admin:pw@cam/ws") == "    url: ws://admin:***@cam/ws")
    }

    @Test func configErrorsNeverQuoteAPassword() throws {
        let error = ConfigError("x", at: SourceLocation(file: "p.yaml", line: 3, column: 5,
                                                        lineText: "    password: hunter2, colour: red"))
        #expect(!error.description.contains("hunter2"))
    }
}
