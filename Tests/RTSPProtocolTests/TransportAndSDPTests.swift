import NIOCore
import RTSPProtocol
import Testing

@Suite struct RTSPTransportTests {
    @Test func readsWhatClientsSend() throws {
        #expect(try RTSPTransport.parse("RTP/AVP;unicast;client_port=5000-5001")
            == [RTSPTransport(lower: .udp, clientPort: 5000...5001)])
        #expect(try RTSPTransport.parse("RTP/AVP/TCP;unicast;interleaved=0-1;mode=\"PLAY\"")
            == [RTSPTransport(lower: .tcp, interleaved: 0...1, modePlay: true)])
        // ffmpeg offers UDP with a trailing parameter; VLC offers several.
        let offered = try RTSPTransport.parse("RTP/AVP/UDP;unicast;client_port=6970-6971;ttl=4, RTP/AVP/TCP;interleaved=254-255")
        #expect(offered.count == 2 && offered[1].interleaved == 254...255)
        #expect(try RTSPTransport.parse("RTP/AVP;unicast;client_port=5000;server_port=6000-6001;ssrc=0A0B0C0D")
            == [RTSPTransport(lower: .udp, clientPort: 5000...5001, serverPort: 6000...6001, ssrc: 0x0A0B0C0D)])
    }

    /// The fuzzer's find: a blank parameter trapped on an empty split.
    @Test func blankParametersAreNothing() throws {
        #expect(try RTSPTransport.parse("RTP/AVP/TCP; ;unicast;\t;interleaved=0-1") == [RTSPTransport(lower: .tcp, interleaved: 0...1)])
        #expect(throws: RTSPTransportError.empty) { try RTSPTransport.parse(" ; ;") }
    }

    @Test func writesWhatItReads() throws {
        let transport = RTSPTransport(lower: .udp, clientPort: 5000...5001, serverPort: 7000...7001, ssrc: 0xAB, modePlay: true)
        #expect(transport.description == "RTP/AVP;unicast;client_port=5000-5001;server_port=7000-7001;ssrc=000000AB;mode=play")
        #expect(try RTSPTransport.parse(transport.description) == [transport])
    }

    @Test(arguments: [
        ("RTP/AVP;client_port=70000-70001", RTSPTransportError.outOfRange(name: "client_port", value: "70000-70001")),
        ("RTP/AVP;client_port=0-1", .outOfRange(name: "client_port", value: "0-1")),
        ("RTP/AVP;client_port=5001-5002", .notAPair(name: "client_port", value: "5001-5002")),
        ("RTP/AVP;client_port=5000-5003", .notAPair(name: "client_port", value: "5000-5003")),
        ("RTP/AVP;client_port=65535", .notAPair(name: "client_port", value: "65535")),
        ("RTP/AVP;server_port=-1", .outOfRange(name: "server_port", value: "-1")),
        ("RTP/AVP/TCP;interleaved=300-301", .outOfRange(name: "interleaved", value: "300-301")),
        ("RTP/AVP/TCP;interleaved=255", .notAPair(name: "interleaved", value: "255")),
        ("RTP/AVP/TCP;interleaved=99999999999999999999-0", .outOfRange(name: "interleaved", value: "99999999999999999999-0")),
        ("RTP/AVP;mode=record", .unsupportedMode("RECORD")),
        ("RAW/RAW/UDP", .unsupportedProtocol("RAW/RAW/UDP")),
        ("RTP/AVP;client_port=5000-5001;client_port=6000-6001", .duplicate("client_port")),
        ("", .empty),
    ])
    func refusesHostileValues(_ value: String, _ expected: RTSPTransportError) {
        #expect(throws: expected) { try RTSPTransport.parse(value) }
    }

    @Test func boundsTheHeader() {
        let many = Array(repeating: "RTP/AVP", count: 9).joined(separator: ",")
        #expect(throws: RTSPTransportError.tooManyAlternatives(limit: 8)) { try RTSPTransport.parse(many) }
        #expect(throws: RTSPTransportError.tooLong(limit: 1024)) { try RTSPTransport.parse("RTP/AVP;" + String(repeating: "x", count: 2000)) }
    }
}

@Suite struct SDPTests {
    static let sps: [UInt8] = [0x67, 0x64, 0x00, 0x1F, 0xAC, 0xD9]
    static let pps: [UInt8] = [0x68, 0xEE, 0x3C, 0x80]

    @Test func writesH264AndAAC() throws {
        let video = try SDPMedia.h264(sps: Self.sps, pps: [Self.pps], control: "trackID=0")
        let audio = try SDPMedia.aac(audioSpecificConfig: [0x12, 0x10], control: "trackID=1")
        let text = SessionDescription(name: "cam1", sessionID: 42, media: [video, audio]).text
        #expect(text.hasPrefix("v=0\r\no=- 42 1 IN IP4 127.0.0.1\r\ns=cam1\r\n"))
        #expect(text.contains("m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
            + "a=fmtp:96 packetization-mode=1;profile-level-id=64001F;sprop-parameter-sets=Z2QAH6zZ,aO48gA==\r\n"
            + "a=control:trackID=0\r\n"))
        #expect(text.contains("m=audio 0 RTP/AVP 97\r\na=rtpmap:97 mpeg4-generic/44100/2\r\n"
            + "a=fmtp:97 streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1210\r\n"
            + "a=control:trackID=1\r\n"))
        let back = try SessionDescription(parsing: text)
        #expect(back.media == [video, audio])
        #expect(try back.media[0].h264ParameterSets() == [Self.sps, Self.pps])
        #expect(try back.media[1].aacConfig() == [0x12, 0x10])
    }

    @Test func writesH265() throws {
        let media = SDPMedia.h265(vps: [0x40, 0x01, 0x0C], sps: [0x42, 0x01, 0x01], pps: [0x44, 0x01], control: "trackID=0")
        let text = SessionDescription(media: [media]).text
        #expect(text.contains("a=rtpmap:96 H265/90000\r\na=fmtp:96 sprop-vps=QAEM;sprop-sps=QgEB;sprop-pps=RAE=\r\n"))
        let back = try SessionDescription(parsing: text)
        let sets = try back.media[0].h265ParameterSets()
        #expect(sets.vps == [0x40, 0x01, 0x0C] && sets.sps == [0x42, 0x01, 0x01] && sets.pps == [0x44, 0x01])
    }

    @Test func refusesAudioConfigsItCannotDescribe() {
        #expect(throws: SDPError.self) { try SDPMedia.aac(audioSpecificConfig: [0x12], control: "a") }
        #expect(throws: SDPError.self) { try SDPMedia.aac(audioSpecificConfig: [0x17, 0x80], control: "a") } // index 14
        #expect(throws: SDPError.self) { try SDPMedia.h264(sps: [0x67], pps: [], control: "a") }
    }

    static let gstreamer = """
        v=0
        o=- 1188340656180883 1 IN IP4 192.168.1.10
        s=Session streamed with GStreamer
        i=rtsp-server
        t=0 0
        a=tool:GStreamer
        a=type:broadcast
        a=control:*
        a=range:npt=0-
        m=video 0 RTP/AVP 96
        c=IN IP4 0.0.0.0
        b=AS:2000
        a=rtpmap:96 H264/90000
        a=framerate:25
        a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z2QAH6zZ,aO48gA==;profile-level-id=64001f
        a=control:stream=0
        m=audio 0 RTP/AVP 97
        a=rtpmap:97 MPEG4-GENERIC/48000/2
        a=fmtp:97 streamtype=5;profile-level-id=2;mode=AAC-hbr;config=1190;sizelength=13;indexlength=3;indexdeltalength=3
        a=control:rtsp://192.168.1.10:8554/test/stream=1
        m=application 0 RTP/AVP 107
        a=rtpmap:107 vnd.onvif.metadata/90000
        """

    @Test func readsWhatGStreamerAndCamerasSend() throws {
        let description = try SessionDescription(parsing: Self.gstreamer)
        #expect(description.media.count == 3 && description.control == "*")
        let video = description.media[0]
        #expect(video.encoding == "H264" && video.clockRate == 90000 && video.parameter("PROFILE-LEVEL-ID") == "64001f")
        #expect(video.otherAttributes == ["framerate:25"])
        #expect(try video.h264ParameterSets() == [Self.sps, Self.pps])
        let audio = description.media[1]
        #expect(audio.encoding == "MPEG4-GENERIC" && audio.clockRate == 48000 && audio.channels == 2)
        #expect(try audio.aacConfig() == [0x11, 0x90])
        let base = "rtsp://192.168.1.10:8554/test/"
        #expect(description.controlURL(for: video, base: base) == "rtsp://192.168.1.10:8554/test/stream=0")
        #expect(description.controlURL(for: video, base: "rtsp://h/test") == "rtsp://h/test/stream=0")
        #expect(description.controlURL(for: audio, base: base) == "rtsp://192.168.1.10:8554/test/stream=1")
    }

    @Test func boundsHostileDescriptions() {
        let big = "v=0\r\n" + String(repeating: "a=x\r\n", count: 14000)
        #expect(throws: SDPError.tooLarge(limit: 65536)) { try SessionDescription(parsing: big) }
        let media = "v=0\r\n" + String(repeating: "m=video 0 RTP/AVP 96\r\n", count: 17)
        #expect(throws: SDPError.tooManyMedia(limit: 16)) { try SessionDescription(parsing: media) }
        #expect(throws: SDPError.missingVersion) { try SessionDescription(parsing: "s=x\r\n") }
        #expect(throws: SDPError.self) { try SessionDescription(parsing: "v=0\r\nm=video x RTP/AVP 96\r\n") }
        #expect(throws: SDPError.self) { try SessionDescription(parsing: "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/0\r\n") }
        let huge = String(repeating: "QUFB", count: 2000)
        let oversized = "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 sprop-parameter-sets=\(huge)\r\n"
        #expect(throws: SDPError.parameterSetTooLarge(name: "sprop-parameter-sets", limit: 4096)) {
            try SessionDescription(parsing: oversized).media[0].h264ParameterSets()
        }
        #expect(throws: SDPError.self) { try SessionDescription(parsing: "v=0\r\nm=video 0 RTP/AVP 96\r\na=control:tr\u{0}D=0\r\n") }
        #expect(throws: SDPError.self) { try SessionDescription(parsing: "v=0\r\na=control:rtsp://h/a b\r\n") }
        let broken = "v=0\r\nm=video 0 RTP/AVP 96\r\na=fmtp:96 sprop-parameter-sets=!!!!\r\n"
        #expect(throws: SDPError.invalidParameterSet("sprop-parameter-sets")) {
            try SessionDescription(parsing: broken).media[0].h264ParameterSets()
        }
    }
}
