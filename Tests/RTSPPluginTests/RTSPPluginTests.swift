import Camflow
import RTSPPlugin
import Testing

@Suite struct RTSPPluginRegistrationTests {
    @Test func pluginIsNamedRTSP() {
        #expect(RTSPPlugin.name == "rtsp")
    }
}
