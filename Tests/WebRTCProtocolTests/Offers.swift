/// Offers as players send them, for the SDP tests (and the `whep` fuzz seeds).
enum Offers {
    static let fingerprint = "A3:5F:0C:91:7E:22:4B:D8:10:6A:C4:39:EE:81:57:F2:0D:B6:73:9A:2C:E5:48:1F:93:7B:AD:06:C1:58:E4:3D"
    static let fingerprintBytes: [UInt8] = fingerprint.split(separator: ":").map { UInt8($0, radix: 16)! }

    /// Chromium 156's offer for `addTransceiver('video', {direction: 'recvonly'})` then the same for audio,
    /// rebuilt from what the design note records: BUNDLE 0 1, extmaps, H.264 payload types 102/104/108/114/116/39/41/43
    /// each followed by its rtx, VP8/VP9/AV1 around them, no High and no H265.
    static let chromium156: String = {
        var lines = [
            "v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=-", "t=0 0",
            "a=group:BUNDLE 0 1", "a=extmap-allow-mixed", "a=msid-semantic: WMS",
            "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 104 105 108 109 114 115 116 117 39 40 41 42 43 44 98 99 45 46 118 119",
            "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0",
            "a=ice-ufrag:Xq3k", "a=ice-pwd:e1Vt9mZ0PpS4kQ7wL2nR8bYc", "a=ice-options:trickle",
            "a=fingerprint:sha-256 \(fingerprint)", "a=setup:actpass", "a=mid:0",
            "a=extmap:1 urn:ietf:params:rtp-hdrext:toffset",
            "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            "a=extmap:3 urn:3gpp:video-orientation",
            "a=extmap:4 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
            "a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
            "a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/video-content-type",
            "a=extmap:7 http://www.webrtc.org/experiments/rtp-hdrext/video-timing",
            "a=extmap:8 http://www.webrtc.org/experiments/rtp-hdrext/color-space",
            "a=extmap:9 urn:ietf:params:rtp-hdrext:sdes:mid",
            "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
            "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
            "a=recvonly", "a=rtcp-mux", "a=rtcp-rsize", "a=rtcp-xr:rcvr-rtt=all",
        ]
        func codec(_ pt: Int, _ name: String, fmtp: String?, rtx: Int) {
            lines.append("a=rtpmap:\(pt) \(name)/90000")
            for feedback in ["goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"] { lines.append("a=rtcp-fb:\(pt) \(feedback)") }
            if let fmtp { lines.append("a=fmtp:\(pt) \(fmtp)") }
            lines += ["a=rtpmap:\(rtx) rtx/90000", "a=fmtp:\(rtx) apt=\(pt)"]
        }
        codec(96, "VP8", fmtp: nil, rtx: 97)
        for (pt, rtx, profile, mode) in [(102, 103, "42001f", 1), (104, 105, "42001f", 0), (108, 109, "42e01f", 1),
                                         (114, 115, "42e01f", 0), (116, 117, "4d001f", 1), (39, 40, "4d001f", 0),
                                         (41, 42, "f4001f", 1), (43, 44, "f4001f", 0)] {
            codec(pt, "H264", fmtp: "level-asymmetry-allowed=1;packetization-mode=\(mode);profile-level-id=\(profile)", rtx: rtx)
        }
        codec(98, "VP9", fmtp: "profile-id=0", rtx: 99)
        codec(45, "AV1", fmtp: "level-idx=5;profile=0;tier=0", rtx: 46)
        lines += ["a=rtpmap:118 red/90000", "a=rtpmap:119 ulpfec/90000"]
        lines += [
            "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
            "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0",
            "a=ice-ufrag:Xq3k", "a=ice-pwd:e1Vt9mZ0PpS4kQ7wL2nR8bYc", "a=ice-options:trickle",
            "a=fingerprint:sha-256 \(fingerprint)", "a=setup:actpass", "a=mid:1",
            "a=extmap:14 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            "a=extmap:4 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
            "a=extmap:9 urn:ietf:params:rtp-hdrext:sdes:mid",
            "a=recvonly", "a=rtcp-mux", "a=rtcp-rsize",
            "a=rtpmap:111 opus/48000/2", "a=rtcp-fb:111 transport-cc", "a=fmtp:111 minptime=10;useinbandfec=1",
            "a=rtpmap:63 red/48000/2", "a=fmtp:63 111/111", "a=rtpmap:9 G722/8000", "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:8 PCMA/8000", "a=rtpmap:13 CN/8000", "a=rtpmap:110 telephone-event/48000",
            "a=rtpmap:126 telephone-event/8000",
        ]
        return lines.joined(separator: "\r\n") + "\r\n"
    }()

    /// Firefox's shape: the fingerprint, ice-ufrag and ice-pwd at session level, LF line ends, audio first.
    static let firefoxStyle = """
    v=0
    o=mozilla...THIS_IS_SDPARTA-99.0 7203391563452637449 0 IN IP4 0.0.0.0
    s=-
    t=0 0
    a=fingerprint:sha-256 \(fingerprint)
    a=group:BUNDLE 0 1
    a=ice-options:trickle
    a=msid-semantic:WMS *
    m=audio 9 UDP/TLS/RTP/SAVPF 109 9 0 8 101
    c=IN IP4 0.0.0.0
    a=recvonly
    a=ice-pwd:0f6b3c2d1e4a5b6c7d8e9f0a1b2c3d4e
    a=ice-ufrag:8b1c2d3e
    a=mid:0
    a=rtcp-mux
    a=rtpmap:109 opus/48000/2
    a=setup:actpass
    m=video 9 UDP/TLS/RTP/SAVPF 120 124 121 125 126 127 97 98
    c=IN IP4 0.0.0.0
    a=recvonly
    a=fmtp:126 profile-level-id=42e01f;level-asymmetry-allowed=1;packetization-mode=1
    a=fmtp:97 profile-level-id=42e01f;level-asymmetry-allowed=1
    a=ice-pwd:0f6b3c2d1e4a5b6c7d8e9f0a1b2c3d4e
    a=ice-ufrag:8b1c2d3e
    a=mid:1
    a=rtcp-fb:126 nack
    a=rtcp-fb:126 nack pli
    a=rtcp-fb:126 ccm fir
    a=rtcp-fb:126 goog-remb
    a=rtcp-mux
    a=rtpmap:120 VP8/90000
    a=rtpmap:124 rtx/90000
    a=rtpmap:121 VP9/90000
    a=rtpmap:125 rtx/90000
    a=rtpmap:126 H264/90000
    a=rtpmap:127 rtx/90000
    a=rtpmap:97 H264/90000
    a=rtpmap:98 rtx/90000
    a=setup:actpass

    """
}
