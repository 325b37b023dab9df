/// The viewers `camflow bench latency-share` attaches, as Python scripts
/// written to a temporary file and run in one process per way: light
/// enough that 50 of them leave the CPU to camflow, and outside camflow's
/// process, so what is measured is the web sink's work alone.
enum LatencySharePeers {
    /// N camera-protocol viewers over WebSocket (asyncio, plain sockets): each
    /// upgrades `/ws`, sends `livestream`, and reads and discards what comes,
    /// with a keep-alive every 10 s. Args: PORT COUNT SECONDS.
    static let webSocket = #"""
    import asyncio, json, os, sys, time

    def text(message):
        data = message.encode()
        mask = os.urandom(4)
        return bytes([0x81, 0x80 | len(data)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))

    async def viewer(port, seconds):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            return -1
        writer.write(text("livestream"))
        received, end, alive = 0, time.monotonic() + seconds, time.monotonic() + 10
        while time.monotonic() < end:
            try:
                data = await asyncio.wait_for(reader.read(1 << 16), timeout=1)
            except asyncio.TimeoutError:
                continue
            if not data:
                break
            received += len(data)
            if time.monotonic() > alive:
                writer.write(text("keep-alive"))
                alive = time.monotonic() + 10
        writer.close()
        return received

    async def main():
        port, count, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
        results = await asyncio.gather(*[viewer(port, seconds) for _ in range(count)], return_exceptions=True)
        print(json.dumps({"bytes": [r if isinstance(r, int) else -1 for r in results]}), flush=True)

    asyncio.run(main())
    """#

    /// N WHEP peers in one GStreamer pipeline: each a webrtcbin with one
    /// receive-only H.264 transceiver whose track ends in a fakesink (no
    /// decoding). Each POSTs from its own loopback address (127.0.0.2, .3,
    /// ...): the endpoint holds one client address to a share of its
    /// sessions. At the end every session is DELETEd and one JSON line tells
    /// how many got media. Args: URL COUNT SECONDS.
    static let whep = #"""
    import http.client, json, sys, threading, time, urllib.parse
    import gi
    gi.require_version("Gst", "1.0")
    gi.require_version("GstSdp", "1.0")
    gi.require_version("GstWebRTC", "1.0")
    from gi.repository import GLib, Gst, GstSdp, GstWebRTC

    CAPS = ("application/x-rtp,media=video,encoding-name=H264,payload=96,clock-rate=90000,"
            "packetization-mode=(string)1,profile-level-id=(string)42e01f")

    class Peer:
        def __init__(self, pipeline, url, index):
            self.url, self.source, self.location, self.media, self.error = url, f"127.0.0.{2 + index}", None, 0, None
            self.posted = False
            self.webrtc = Gst.ElementFactory.make("webrtcbin", f"peer{index}")
            self.webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
            pipeline.add(self.webrtc)
            self.agent = self.webrtc.get_property("ice-agent")  # kept: its wrapper must outlive webrtcbin's use
            self.agent.emit("add-local-ip-address", "127.0.0.1")
            self.webrtc.emit("add-transceiver", GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY, Gst.Caps.from_string(CAPS))
            self.webrtc.connect("notify::ice-gathering-state", lambda *_: GLib.idle_add(self.post_if_gathered))
            self.webrtc.connect("pad-added", self.on_pad)
            self.pipeline = pipeline

        def start(self):
            self.webrtc.sync_state_with_parent()
            self.webrtc.emit("create-offer", None, Gst.Promise.new_with_change_func(self.on_offer))

        def on_offer(self, promise):
            reply = promise.get_reply()  # kept in a name: the structure belongs to the promise
            offer = reply.get_value("offer") if reply else None
            if offer is None:
                self.error = "webrtcbin made no offer"
                return
            self.webrtc.emit("set-local-description", offer,
                             Gst.Promise.new_with_change_func(lambda _: GLib.idle_add(self.post_if_gathered)))

        def post_if_gathered(self):
            if self.posted or self.webrtc.get_property("ice-gathering-state") != GstWebRTC.WebRTCICEGatheringState.COMPLETE:
                return False
            description = self.webrtc.get_property("local-description")
            if description is None:
                return False
            self.posted = True
            threading.Thread(target=self.post, args=(description.sdp.as_text(),), daemon=True).start()
            return False

        def request(self, method, path, body=None):
            parts = urllib.parse.urlsplit(self.url)
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10, source_address=(self.source, 0))
            connection.request(method, path, body=body, headers={"Content-Type": "application/sdp"} if body else {})
            response = connection.getresponse()
            return response.status, response.getheader("Location"), response.read().decode("utf-8", "replace")

        def post(self, offer):
            try:
                status, location, body = self.request("POST", urllib.parse.urlsplit(self.url).path, offer.encode())
            except OSError as error:
                self.error = f"POST: {error}"
                return
            if status != 201:
                self.error = f"POST answered {status}: {body.strip()[:200]}"
                return
            self.location = location
            GLib.idle_add(self.on_answer, body)

        def on_answer(self, body):
            _, message = GstSdp.SDPMessage.new_from_text(body)
            answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, message)
            self.webrtc.emit("set-remote-description", answer, Gst.Promise.new())
            return False

        def on_pad(self, _webrtc, pad):
            if pad.get_direction() != Gst.PadDirection.SRC:
                return
            sink = Gst.ElementFactory.make("fakesink")
            sink.set_property("sync", False)
            sink.set_property("signal-handoffs", True)
            sink.connect("handoff", self.on_buffer)
            self.pipeline.add(sink)
            sink.sync_state_with_parent()
            pad.link(sink.get_static_pad("sink"))

        def on_buffer(self, *_):
            self.media += 1

    def main():
        url, count, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
        Gst.init(None)
        pipeline = Gst.Pipeline.new("peers")
        peers = [Peer(pipeline, url, index) for index in range(count)]
        pipeline.set_state(Gst.State.PLAYING)
        for peer in peers:
            peer.start()
        loop = GLib.MainLoop()
        GLib.timeout_add(int(seconds * 1000), loop.quit)
        loop.run()
        for peer in peers:
            if peer.location:
                try:
                    peer.request("DELETE", peer.location)
                except OSError:
                    pass
        pipeline.set_state(Gst.State.NULL)
        print(json.dumps({"withMedia": sum(1 for p in peers if p.media > 0),
                          "errors": sorted({p.error for p in peers if p.error})}), flush=True)

    main()
    """#
}
