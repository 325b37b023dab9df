import InstarPlugin
import Testing

/// Credentials in a camera URL, decoded as written.
@Suite struct CameraEndpointTests {
    @Test func percentEscapesDecode_andAMalformedOneIsKeptAsWritten() throws {
        let escaped = try CameraEndpoint.parse("ws://ad%6Din:p%40ss@cam/ws")
        #expect(escaped.username == "admin" && escaped.password == "p@ss")
        // "%of" is no escape: the password is what the user typed, not "50%f".
        let literal = try CameraEndpoint.parse("ws://admin:50%off@cam/ws")
        #expect(literal.password == "50%off")
        // A sign is no hex digit, and a trailing "%4" is kept whole.
        #expect(try CameraEndpoint.parse("ws://admin:%+F%4@cam/ws").password == "%+F%4")
    }
}
