import InstarProtocol
import NIOCore
import Testing

@Suite struct CameraAlarmTests {
    @Test func mqttValues_mapToTheirSources() {
        let cases: [(String, String?, Int?, Bool)] = [
            (#"{"val":"1"}"#, "area1", 1, true), (#"{"val":"4"}"#, "area4", 4, true), (#"{"val":"5"}"#, "pir", nil, true),
            (#"{"val":"6"}"#, "audio", nil, true), (#"{"val":"7"}"#, "area+pir", 1, true), (#"{"val":10}"#, "area+pir", 4, true),
            (#"{ "val" : "0" }"#, "none", nil, false),
        ]
        for (payload, source, area, active) in cases {
            let alarm = CameraAlarm.fromMQTT(topic: "instar/000389AABBCC/status/alarm/triggered", payload: ByteBuffer(string: payload))
            #expect(alarm?.source == source && alarm?.area == area && alarm?.active == active, "\(payload)")
        }
        let object = CameraAlarm.fromMQTT(topic: "instar/000389AABBCC/status/alarm/triggered/object", payload: ByteBuffer(string: #"{"val":"5"}"#))
        #expect(object?.source == "object" && object?.object == "person+animal")
    }

    @Test func whatIsNoAlarm_isRefused() {
        for payload in [#"{"val":"11"}"#, #"{"val":"-1"}"#, #"{"val":"1x"}"#, "1", "", #"{"val":"99999999999999999999"}"#,
                        String(repeating: " ", count: 300) + #"{"val":"1"}"#] {
            #expect(CameraAlarm.fromMQTT(topic: "instar/x/status/alarm/triggered", payload: ByteBuffer(string: payload)) == nil, "\(payload)")
        }
        #expect(CameraAlarm.fromMQTT(topic: "instar/x/status/alarm/triggered/object", payload: ByteBuffer(string: #"{"val":"8"}"#)) == nil)
    }

    @Test func alarmServerQueries_andMACs() {
        #expect(CameraAlarm.fromAlarmServer(query: "active=3&object=1")?.source == "area3")
        #expect(CameraAlarm.fromAlarmServer(query: "active=3&object=1")?.object == "person")
        #expect(CameraAlarm.fromAlarmServer(query: "active=99")?.source == "manual")
        #expect(CameraAlarm.fromAlarmServer(query: "object=1") == nil)
        #expect(CameraAlarm.fromAlarmServer(query: "active=12") == nil)
        #expect(CameraAlarm.mqttTopics(camera: "00:03:89:aa:bb:cc").trigger == "instar/000389AABBCC/status/alarm/triggered")
        #expect(CameraAlarm.isMAC("00:03:89:aa:bb:cc") && !CameraAlarm.isMAC("00:03:89:aa:bb") && !CameraAlarm.isMAC("zz0389aabbcc"))
    }
}
