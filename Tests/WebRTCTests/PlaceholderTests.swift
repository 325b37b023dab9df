import Testing
import WebRTC

@Suite struct WebRTCModuleTests {
    @Test func moduleLinks() { _ = WebRTCModule.self }
}
