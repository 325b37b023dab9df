import Testing
import WebRTCProtocol

@Suite struct WebRTCProtocolModuleTests {
    @Test func moduleLinks() { _ = WebRTCProtocolModule.self }
}
