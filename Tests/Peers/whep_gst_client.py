#!/usr/bin/python3
"""A WHEP player that is not a browser: GStreamer's webrtcbin receiving and
decoding H.264 from a WHEP endpoint (camflow's web sink), for the tests and
for users who want to check a stream without Chromium.

    /usr/bin/python3 whep_gst_client.py URL [--frames N] [--timeout S]
        [--user U] [--local-address IP ...] [--show-sdp]

URL is the endpoint, e.g. http://127.0.0.1:8080/whep/cam. The password for
--user comes from the WHEP_PASSWORD environment variable (so it is not on the
command line); it is never printed.

webrtcbin (bundle-policy max-bundle) offers one receive-only H.264 video
transceiver; the offer is POSTed once ICE gathering is complete (no trickle
ICE), the 201's answer is set, the received track goes through
rtph264depay ! h264parse ! avdec_h264 ! videoconvert ! appsink, whose frames
are counted and whose caps give the size. At N frames, or the timeout, the
session is DELETEd and ONE JSON line is printed on stdout:

    {"status": 201, "location": ..., "frames": N, "width": W, "height": H,
     "offerSeconds": ..., "answerSeconds": ..., "firstFrameSeconds": ...,
     "lastFrameSeconds": ..., "iceConnectionState": ..., "connectionState": ...,
     "dtlsState": ..., "packetsReceived": ..., "packetsLost": ...,
     "senderReportReceived": ...,
     "deleteStatus": 200, "error": null}

Exit status 0 when N frames were decoded and the DELETE answered 2xx, 1
otherwise. GStreamer 1.22's gst-launch cannot do the WHEP exchange itself,
hence this script.

libnice, webrtcbin's ICE agent, leaves loopback addresses out of its host
candidates; when the URL's host is a loopback address (or --local-address is
given) the agent is told which addresses to use (the ice-agent's
add-local-ip-address, GStreamer 1.22).
It uses /usr/bin/python3 because the GStreamer bindings (python3-gi) are
installed for the system's Python (Debian: gstreamer1.0-nice,
gir1.2-gst-plugins-bad-1.0, gstreamer1.0-libav).
"""
import argparse
import base64
import ipaddress
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

# packetization-mode=1: camflow (like most WHEP servers) sends FU-A fragments.
VIDEO_CAPS = ("application/x-rtp,media=video,encoding-name=H264,payload=96,clock-rate=90000,"
              "packetization-mode=(string)1,profile-level-id=(string)42e01f")
DECODE = "rtph264depay ! h264parse ! avdec_h264 ! videoconvert ! appsink name=frames emit-signals=true sync=false"


def enum_name(value):
    """'connected' for GST_WEBRTC_ICE_CONNECTION_STATE_CONNECTED and the like."""
    if value is None:
        return None
    nick = getattr(value, "value_nick", None)
    return nick if nick else str(value)


class Player:
    def __init__(self, args, authorization):
        self.args = args
        self.authorization = authorization
        self.loop = GLib.MainLoop()
        self.lock = threading.Lock()
        self.result = {"url": args.url, "status": None, "location": None, "frames": 0, "width": None,
                       "height": None, "offerSeconds": None, "answerSeconds": None,
                       "firstFrameSeconds": None, "lastFrameSeconds": None, "iceConnectionState": None,
                       "connectionState": None, "dtlsState": None, "packetsReceived": None,
                       "packetsLost": None, "senderReportReceived": None, "deleteStatus": None, "error": None}
        self.started = time.monotonic()
        self.posted = False
        self.finished = False

        self.pipeline = Gst.Pipeline.new("whep")
        self.webrtc = Gst.ElementFactory.make("webrtcbin", "webrtc")
        if self.webrtc is None:
            raise RuntimeError("no webrtcbin element (gstreamer1.0-plugins-bad, gstreamer1.0-nice)")
        self.webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
        self.pipeline.add(self.webrtc)
        # With GStreamer 1.22.0 and Debian's PyGObject, letting this wrapper go frees the agent under webrtcbin
        # (a floating reference the binding takes over; a segfault at the first use). It lives as long as webrtcbin.
        self.agent = self.webrtc.get_property("ice-agent")
        for address in args.local_address:
            if not self.agent.emit("add-local-ip-address", address):
                raise RuntimeError(f"the ICE agent refused local address {address}")
        self.webrtc.emit("add-transceiver", GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY,
                         Gst.Caps.from_string(VIDEO_CAPS))
        self.webrtc.connect("notify::ice-gathering-state", self.on_gathering)
        self.webrtc.connect("pad-added", self.on_pad)
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self.on_error_message)

    def elapsed(self):
        """Seconds since the offer was asked for."""
        return round(time.monotonic() - self.started, 3)

    # Everything below that webrtcbin or a streaming thread calls hands over to the main loop.

    def run(self):
        self.pipeline.set_state(Gst.State.PLAYING)
        self.started = time.monotonic()
        GLib.timeout_add(int(self.args.timeout * 1000), self.on_timeout)
        self.webrtc.emit("create-offer", None, Gst.Promise.new_with_change_func(self.on_offer))
        self.loop.run()
        self.pipeline.set_state(Gst.State.NULL)
        return self.result

    def on_offer(self, promise):
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply else None
        if offer is None:
            GLib.idle_add(self.fail, "webrtcbin made no offer")
            return
        # Gathering may complete before the description is in place: check again once it is.
        self.webrtc.emit("set-local-description", offer,
                         Gst.Promise.new_with_change_func(lambda _: GLib.idle_add(self.post_if_gathered)))

    def on_gathering(self, *_):
        GLib.idle_add(self.post_if_gathered)

    def post_if_gathered(self):
        state = self.webrtc.get_property("ice-gathering-state")
        if self.posted or self.finished:
            return False
        if state != GstWebRTC.WebRTCICEGatheringState.COMPLETE and not self.args.early_offer:
            return False
        description = self.webrtc.get_property("local-description")
        if description is None:
            return False
        self.posted = True
        self.result["offerSeconds"] = self.elapsed()
        offer = description.sdp.as_text()
        if self.args.show_sdp:
            print(f"offer:\n{offer}", file=sys.stderr)
        threading.Thread(target=self.post, args=(offer,), daemon=True).start()
        return False

    def request(self, method, url, body=None):
        headers = {}
        if body is not None:
            headers["Content-Type"] = "application/sdp"
        if self.authorization:
            headers["Authorization"] = self.authorization
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers), response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode("utf-8", "replace")

    def post(self, offer):
        try:
            status, headers, body = self.request("POST", self.args.url, offer.encode())
        except OSError as error:
            GLib.idle_add(self.fail, f"POST {self.args.url}: {error}")
            return
        GLib.idle_add(self.on_answer, status, headers, body)

    def on_answer(self, status, headers, body):
        self.result["answerSeconds"] = self.elapsed()
        self.result["status"] = status
        location = next((v for k, v in headers.items() if k.lower() == "location"), None)
        if location:
            self.result["location"] = urllib.parse.urljoin(self.args.url, location)
        if status != 201:
            self.fail(f"POST answered {status}: {body.strip()[:300]}")
            return False
        if self.args.show_sdp:
            print(f"answer:\n{body}", file=sys.stderr)
        result, message = GstSdp.SDPMessage.new_from_text(body)
        if result != GstSdp.SDPResult.OK:
            self.fail("the answer is not SDP")
            return False
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, message)
        self.webrtc.emit("set-remote-description", answer, Gst.Promise.new())
        return False

    def on_pad(self, _webrtc, pad):
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        decode = Gst.parse_bin_from_description(DECODE, True)
        decode.get_by_name("frames").connect("new-sample", self.on_sample)
        self.pipeline.add(decode)
        decode.sync_state_with_parent()
        pad.link(decode.get_static_pad("sink"))

    def on_sample(self, sink):
        sample = sink.emit("pull-sample")
        if sample is None:
            return Gst.FlowReturn.OK
        structure = sample.get_caps().get_structure(0)
        with self.lock:
            self.result["frames"] += 1
            if self.result["firstFrameSeconds"] is None:
                self.result["firstFrameSeconds"] = self.elapsed()
            self.result["lastFrameSeconds"] = self.elapsed()
            self.result["width"] = structure.get_value("width")
            self.result["height"] = structure.get_value("height")
            done = self.result["frames"] >= self.args.frames
        if done:
            GLib.idle_add(self.finish)
        return Gst.FlowReturn.OK

    def on_error_message(self, _bus, message):
        error, _debug = message.parse_error()
        self.fail(f"{message.src.get_name()}: {error.message}")

    def on_timeout(self):
        if not self.finished:
            with self.lock:
                frames = self.result["frames"]
            self.fail(f"{frames} of {self.args.frames} frames within {self.args.timeout} s")
        return False

    def fail(self, reason):
        if self.result["error"] is None:
            self.result["error"] = reason
        self.finish()
        return False

    def read_states(self):
        self.result["iceConnectionState"] = enum_name(self.webrtc.get_property("ice-connection-state"))
        self.result["connectionState"] = enum_name(self.webrtc.get_property("connection-state"))
        transceiver = self.webrtc.emit("get-transceiver", 0)
        transport = transceiver.get_property("receiver").get_property("transport") if transceiver else None
        if transport is not None:
            self.result["dtlsState"] = enum_name(transport.get_property("state"))
        promise = Gst.Promise.new()
        self.webrtc.emit("get-stats", None, promise)
        # webrtcbin answers on its own thread; the loop is not needed for it.
        if promise.wait() != Gst.PromiseResult.REPLIED or promise.get_reply() is None:
            return
        stats = promise.get_reply()

        def visit(_field, value):
            if isinstance(value, Gst.Structure) and value.get_name() == "inbound-rtp":
                found, number = value.get_uint64("packets-received")
                if found:
                    self.result["packetsReceived"] = number
                found, number = value.get_int64("packets-lost")
                if found:
                    self.result["packetsLost"] = number
                source = value.get_value("gst-rtpsource-stats") if value.has_field("gst-rtpsource-stats") else None
                if isinstance(source, Gst.Structure) and source.has_field("have-sr"):
                    self.result["senderReportReceived"] = bool(source.get_value("have-sr"))
            return True

        stats.foreach(visit)

    def finish(self):
        if self.finished:
            return False
        self.finished = True
        try:
            self.read_states()
        except Exception as error:  # the states are extra: a binding difference must not hide the result
            self.result["statesError"] = str(error)
        location = self.result["location"]
        if location and self.result["status"] == 201:
            threading.Thread(target=self.delete, args=(location,), daemon=True).start()
        else:
            self.loop.quit()
        return False

    def delete(self, location):
        try:
            self.result["deleteStatus"] = self.request("DELETE", location)[0]
        except OSError as error:
            if self.result["error"] is None:
                self.result["error"] = f"DELETE {location}: {error}"
        GLib.idle_add(self.loop.quit)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--frames", type=int, default=25, help="frames to decode (25)")
    parser.add_argument("--timeout", type=float, default=20, help="seconds before giving up (20)")
    parser.add_argument("--early-offer", action="store_true",
                        help="POST the offer once it is set, before gathering completes (camflow, ICE-lite, "
                             "takes the peer's address from its checks, not from the offer's candidates)")
    parser.add_argument("--user", default=os.environ.get("WHEP_USER"),
                        help="Basic auth user (or WHEP_USER); the password is read from WHEP_PASSWORD")
    parser.add_argument("--local-address", action="append", default=[],
                        help="an address the ICE agent gathers on (repeatable; 127.0.0.1 when the URL's host is loopback)")
    parser.add_argument("--show-sdp", action="store_true", help="print the offer and the answer on stderr")
    args = parser.parse_args()
    host = urllib.parse.urlsplit(args.url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not args.local_address and loopback:
        args.local_address = ["127.0.0.1"]
    authorization = None
    if args.user is not None:
        password = os.environ.get("WHEP_PASSWORD", "")
        authorization = "Basic " + base64.b64encode(f"{args.user}:{password}".encode()).decode()

    Gst.init(None)
    try:
        result = Player(args, authorization).run()
    except (RuntimeError, GLib.Error) as error:
        result = {"url": args.url, "frames": 0, "error": str(error)}
    print(json.dumps(result), flush=True)
    ok = (result.get("error") is None and result.get("frames", 0) >= args.frames
          and 200 <= (result.get("deleteStatus") or 0) < 300)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
