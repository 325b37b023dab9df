#!/usr/bin/python3
"""Drives Debian's headless Chromium over the DevTools protocol for camflow's
end-to-end tests, and reads /metrics with the Prometheus client's parser.

  browser_check.py viewer URL --screenshot FILE [--play SECONDS] [--timeout S]
  browser_check.py dashboard URL --screenshot FILE [--play SECONDS] [--timeout S]
  browser_check.py recordings URL --screenshot FILE [--play SECONDS] [--timeout S]
  browser_check.py metrics URL
  browser_check.py webrtc URL|other-origin --whep PATH|URL [--frames N] [--garbage COUNT] [--authorization VALUE] [--timeout S]
  browser_check.py viewer-frames VIEWER-URL [--frames N] [--timeout S]
  browser_check.py viewer-live-edge VIEWER-URL --stats URL --gop SECONDS --join-at FROM:TO [--play SECONDS]

viewer-frames: the viewer page (its URL says mode and autostart) until N frames
were shown by whichever transport it ended up on, then it leaves the page (a
WebRTC session is DELETEd on pagehide). viewer-live-edge: clicks Start when
the stream's media time is FROM..TO seconds into its GOP (so the player joins
with that much of the GOP cache behind the newest frame), then samples the MSE
player's lag behind its newest data for --play seconds.
--assets DIR serves /assets/*, /viewer and /recordings from DIR instead of
camflow (try a page change without rebuilding camflow).

Prints one JSON object with what it saw; the Swift tests decide what passes.
Chromium speaks the protocol over a pipe (--remote-debugging-pipe: fd 3 in,
fd 4 out, messages ended by NUL), so no WebSocket library is needed.
"""

import argparse
import base64
import json
import os
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp_pipe import ChromiumPipe  # noqa: E402


class Chromium(ChromiumPipe):
    # The sink's pages, served from --assets like /assets/* (the sink serves them under these paths).
    PAGES = {"/viewer": "viewer.html", "/recordings": "recordings.html"}

    def __init__(self, width=1280, assets=None):
        # A page the protocol serves has no address, so it counts as public and may not reach loopback.
        super().__init__([f"--window-size={width},900"]
                         + (["--disable-features=LocalNetworkAccessChecks"] if assets else []))
        self.session = None
        self.events = []
        self.assets = assets
        self.side_id = 1 << 30

    def send(self, method, params=None, session=True, timeout=30):
        return self.call(method, params, self.session if session else None, timeout)

    def on_event(self, message):
        self.events.append(message)

    def read(self, deadline):
        message = super().read(deadline)
        if message is not None and message.get("method") == "Fetch.requestPaused":
            self.serve_asset(message)
        return message

    def serve_asset(self, message):
        """Answers an intercepted /assets/ request from the --assets directory, without waiting for a reply."""
        params = message["params"]
        url_path = urllib.parse.urlparse(params["request"]["url"]).path
        name = self.PAGES.get(url_path, os.path.basename(url_path))
        path = os.path.join(self.assets, name)
        self.side_id += 1
        if os.path.isfile(path):
            with open(path, "rb") as file:
                body = base64.b64encode(file.read()).decode()
            kind = {".css": "text/css", ".html": "text/html"}.get(os.path.splitext(name)[1], "text/javascript")
            command = {"method": "Fetch.fulfillRequest", "params": {
                "requestId": params["requestId"], "responseCode": 200, "body": body,
                "responseHeaders": [{"name": "Content-Type", "value": kind + "; charset=utf-8"}]}}
        else:
            command = {"method": "Fetch.continueRequest", "params": {"requestId": params["requestId"]}}
        command.update(id=self.side_id, sessionId=message.get("sessionId"))
        self.write(command)

    def drain(self, until, seconds):
        """Collects events until one satisfies `until`, at most `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            event = self.read(deadline)
            if event is None:
                return
            self.events.append(event)
            if until(event):
                return

    def open(self, url):
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = self.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, session=False)
        self.session = attached["sessionId"]
        for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
            self.send(domain)
        if self.assets:
            self.send("Fetch.enable", {"patterns": [{"urlPattern": "*/assets/*"}] + [
                {"urlPattern": "*" + page + "*", "resourceType": "Document"} for page in self.PAGES]})
        self.send("Page.navigate", {"url": url})

    def evaluate(self, expression, await_promise=False):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": await_promise})
        if "exceptionDetails" in result:
            return None
        return result["result"].get("value")

    def console_errors(self):
        errors = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                errors.append(details.get("exception", {}).get("description") or details.get("text", "exception"))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                errors.append(params["entry"].get("text", ""))
        return errors

    def screenshot(self, path):
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "wb") as file:
            file.write(base64.b64decode(data))



VIEWER_STATE = """(() => {
  const video = document.getElementById('video');
  const viewer = window.camflowViewer || {};
  const player = viewer.player;
  return { played: player ? player.playedSeconds() : 0, currentTime: video.currentTime,
           videoWidth: video.videoWidth, videoHeight: video.videoHeight,
           badge: document.getElementById('badge').textContent,
           codecs: document.getElementById('codec').textContent,
           messages: viewer.messages || 0, pageErrors: viewer.errors || [] };
})()"""

DASHBOARD_STATE = """(() => {
  const dashboard = window.camflowDashboard || { tiles: new Map(), errors: [] };
  const tiles = [...dashboard.tiles.entries()].map(([name, tile]) => ({
    name, played: tile.player.playedSeconds(), state: tile.player.state,
    videoWidth: tile.root.querySelector('video').videoWidth,
    videoHeight: tile.root.querySelector('video').videoHeight }));
  return { reports: dashboard.reports || 0, tiles,
           graphNodes: [...document.querySelectorAll('#graph g.node')].map((g) => g.dataset.id),
           graphEdges: document.querySelectorAll('#graph g.edge').length,
           nodeLabels: [...document.querySelectorAll('#graph g.node text.small')].map((t) => t.textContent),
           ready: document.getElementById('ready').textContent, pageErrors: dashboard.errors,
           pageWidth: window.innerWidth, scrollWidth: document.documentElement.scrollWidth,
           nodeBoxes: [...document.querySelectorAll('#graph g.node rect')].map((r) => {
             const box = r.getBoundingClientRect();
             return { left: box.left, right: box.right, top: box.top, width: box.width };
           }) };
})()"""

# Clicks the middle of the first recorded span once it is drawn, then reports the player.
RECORDINGS_STATE = """(() => {
  const spans = [...document.querySelectorAll('.timeline .span')];
  const video = document.getElementById('video');
  if (spans.length && !window.__clicked) {
    window.__clicked = true;
    const box = spans[0].getBoundingClientRect();
    spans[0].parentElement.dispatchEvent(new MouseEvent('click', { clientX: box.left + box.width / 2, bubbles: true }));
  }
  return { timelines: document.querySelectorAll('.timeline').length, spans: spans.length,
           clips: document.querySelectorAll('.timeline .clip').length, gaps: document.querySelectorAll('.timeline .gap').length,
           currentTime: video.currentTime, videoWidth: video.videoWidth, videoHeight: video.videoHeight,
           source: video.currentSrc, download: document.getElementById('download').getAttribute('href'),
           status: document.getElementById('status').textContent, summary: document.getElementById('summary').textContent };
})()"""


# The viewer page's transport and what it shows; frames are pictures presented
# (rVFC for WebRTC, the playback quality counters for MSE).
VIEWER_FRAMES_STATE = """(async () => {
  const video = document.getElementById('video');
  const viewer = window.camflowViewer || {};
  const player = viewer.player;
  const out = { transport: viewer.transport || null, fallback: viewer.fallback || null, notes: viewer.notes || [],
                transportLine: document.getElementById('transport').textContent,
                badge: document.getElementById('badge').textContent, pageErrors: viewer.errors || [],
                videoWidth: video.videoWidth, videoHeight: video.videoHeight, frames: 0,
                playerState: player ? player.state : null, firstFrameSeconds: player ? player.firstFrameSeconds : null };
  if (viewer.transport === 'webrtc' && player && player.stats) {
    out.webrtc = await player.stats();
    out.frames = out.webrtc.framesDecoded || 0;
  } else if (viewer.transport === 'mse' && player && video.getVideoPlaybackQuality) {
    const quality = video.getVideoPlaybackQuality();
    out.frames = quality.totalVideoFrames - quality.droppedVideoFrames;
    out.videoFrames = quality.totalVideoFrames;
    out.currentTime = video.currentTime;
    out.live = player.live;
  }
  return out;
})()"""

VIEWER_LIVE_STATE = """(() => {
  const video = document.getElementById('video');
  const player = (window.camflowViewer || {}).player;
  const buffered = video.buffered;
  return { currentTime: video.currentTime, playbackRate: video.playbackRate, paused: video.paused,
           bufferedStart: buffered.length ? buffered.start(0) : null,
           bufferedEnd: buffered.length ? buffered.end(buffered.length - 1) : null,
           live: player && player.live ? Object.assign({}, player.live) : null,
           played: player ? player.playedSeconds() : 0, videoWidth: video.videoWidth };
})()"""


def browse(args, expression, done):
    chromium = Chromium(args.width, args.assets)
    try:
        chromium.open(args.url)
        deadline = time.monotonic() + args.timeout
        state = None
        while time.monotonic() < deadline:
            state = chromium.evaluate(expression)
            if state and done(state):
                break
            chromium.read(time.monotonic() + 0.25)  # collects events while waiting
        state = state or {}
        state["consoleErrors"] = chromium.console_errors()
        chromium.screenshot(args.screenshot)
        state["screenshot"] = os.path.abspath(args.screenshot)
        return state
    finally:
        chromium.close()


# Offers video and audio (recvonly) to a WHEP resource of the page's origin and
# keeps the peer connection in window.__whep.
WHEP_START = """(() => {
  const w = window.__whep = { status: 'offering' };
  (async () => {
    try {
      const pc = w.pc = new RTCPeerConnection();
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      const video = w.video = document.createElement('video');
      video.muted = true; video.autoplay = true; video.playsInline = true;
      document.body.appendChild(video);
      pc.ontrack = (event) => {
        w.tracks = (w.tracks || 0) + 1;
        if (event.track.kind === 'video') video.srcObject = new MediaStream([event.track]);
      };
      await pc.setLocalDescription(await pc.createOffer());
      const response = await fetch(%s, { method: 'POST', headers: Object.assign({ 'content-type': 'application/sdp' }, %s),
                                          body: pc.localDescription.sdp });
      w.postStatus = response.status;
      w.location = response.headers.get('location') && new URL(response.headers.get('location'), new URL(%s, location.href)).href;
      const text = await response.text();
      if (response.status !== 201) { w.status = 'refused'; w.error = text; return; }
      w.answer = text;
      await pc.setRemoteDescription({ type: 'answer', sdp: text });
      w.status = 'negotiated';
    } catch (error) { w.status = 'error'; w.error = String(error); }
  })();
  return true;
})()"""

WHEP_STATE = """(async () => {
  const w = window.__whep || {};
  const out = { status: w.status, postStatus: w.postStatus, location: w.location, error: w.error || null,
                tracks: w.tracks || 0, answer: w.answer || null, framesDecoded: 0 };
  if (w.pc) {
    out.connectionState = w.pc.connectionState;
    out.liveTransceivers = w.pc.getTransceivers().filter((t) => t.currentDirection && t.currentDirection !== 'inactive'
                                                               && t.currentDirection !== 'stopped').length;
    (await w.pc.getStats()).forEach((r) => {
      if (r.type === 'transport') Object.assign(out, { iceState: r.iceState, dtlsState: r.dtlsState, tlsVersion: r.tlsVersion,
                                                       dtlsCipher: r.dtlsCipher, srtpCipher: r.srtpCipher });
      if (r.type === 'inbound-rtp' && r.kind === 'video') Object.assign(out, {
        framesDecoded: r.framesDecoded || 0, keyFramesDecoded: r.keyFramesDecoded, frameWidth: r.frameWidth,
        frameHeight: r.frameHeight, packetsReceived: r.packetsReceived, packetsLost: r.packetsLost, nackCount: r.nackCount,
        pliCount: r.pliCount, firCount: r.firCount });
    });
  }
  if (w.video) { out.videoWidth = w.video.videoWidth; out.videoHeight = w.video.videoHeight; }
  return out;
})()"""


def garbage_datagrams(count):
    """Datagrams of every kind the port tells apart, none from a checked address."""
    import random
    heads = [b"\x00\x01", b"\x01\x01", b"\x16\xfe\xfd", b"\x17\xfe\xfd", b"\x80\xc8", b"\x81\xcd", b"\x80\x6c",
             b"\x90", b"\x40", b""]
    for index in range(count):
        head = heads[index % len(heads)]
        body = os.urandom(random.randint(0, 1300))
        if head == b"\x00\x01" and index % 20 == 0:
            # A Binding request with a well-formed header and a made-up USERNAME.
            username = b"abcdefgh:wxyz"
            attribute = b"\x00\x06" + len(username).to_bytes(2, "big") + username + b"\x00" * (-len(username) % 4)
            attribute += b"\x00\x08\x00\x14" + os.urandom(20)
            body = len(attribute).to_bytes(2, "big") + b"\x21\x12\xa4\x42" + os.urandom(12) + attribute
        yield head + body


def serve_blank_page():
    """An origin of its own (http://127.0.0.1:PORT/) serving an empty page, for cross-origin checks."""
    import http.server
    import threading

    class Blank(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<!doctype html><title>another origin</title><body></body>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Blank)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def webrtc(args):
    import re
    import socket
    chromium = Chromium(args.width)
    page_server = None
    try:
        if args.url == "other-origin":
            page_server, args.url = serve_blank_page()
        chromium.open(args.url)
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline and chromium.evaluate("document.readyState") != "complete":
            chromium.read(time.monotonic() + 0.1)
        extra = {"authorization": args.authorization} if args.authorization else {}
        chromium.evaluate(WHEP_START % (json.dumps(args.whep), json.dumps(extra), json.dumps(args.whep)))
        state, garbage_at, started = {}, None, time.monotonic()
        while time.monotonic() < deadline:
            state = chromium.evaluate(WHEP_STATE, await_promise=True) or {}
            if state.get("status") in ("refused", "error"):
                break
            frames = state.get("framesDecoded") or 0
            if args.garbage and garbage_at is None and frames >= 1 and state.get("answer"):
                port = int(re.search(r"a=candidate:\S+ 1 udp \d+ (\S+) (\d+) typ host", state["answer"]).group(2))
                host = re.search(r"a=candidate:\S+ 1 udp \d+ (\S+) ", state["answer"]).group(1)
                sender = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
                for index, datagram in enumerate(garbage_datagrams(args.garbage)):
                    sender.sendto(datagram, (host, port))
                    if index % 25 == 24:
                        time.sleep(0.005)  # within the receiver's socket buffer: all of them reach camflow
                sender.close()
                garbage_at = frames
            if (frames >= args.frames + (garbage_at or 0) and (not args.garbage or garbage_at is not None)
                    and state.get("videoWidth")):
                break
            chromium.read(time.monotonic() + 0.2)
        state["secondsToFrames"] = round(time.monotonic() - started, 2)
        state["framesAtGarbage"] = garbage_at
        state["garbageSent"] = args.garbage if garbage_at is not None else 0
        if state.get("location"):
            state["deleteStatus"] = chromium.evaluate(
                "fetch(window.__whep.location, { method: 'DELETE', headers: %s }).then((r) => r.status)" % json.dumps(extra),
                await_promise=True)
            state["pageOrigin"] = chromium.evaluate("location.origin")
        chromium.evaluate("window.__whep && window.__whep.pc && window.__whep.pc.close()")
        state["consoleErrors"] = chromium.console_errors()
        return state
    finally:
        chromium.close()
        if page_server:
            page_server.shutdown()


def viewer_frames(args):
    """The viewer until it has shown --frames pictures; then it leaves the page."""
    chromium = Chromium(args.width, args.assets)
    try:
        chromium.open(args.url)
        started = time.monotonic()
        deadline = started + args.timeout
        state, first_frame_at = {}, None
        # MSE: the most media time played without a new picture (decoded or dropped), in seconds.
        longest_freeze, frozen_since, last_frames = 0, None, None
        while time.monotonic() < deadline:
            state = chromium.evaluate(VIEWER_FRAMES_STATE, await_promise=True) or {}
            if state.get("frames", 0) > 0 and first_frame_at is None:
                first_frame_at = time.monotonic() - started
            if state.get("videoFrames"):
                if state["videoFrames"] != last_frames or frozen_since is None or state["currentTime"] < frozen_since:
                    frozen_since, last_frames = state["currentTime"], state["videoFrames"]
                longest_freeze = max(longest_freeze, state["currentTime"] - frozen_since)
            # Frames decoded, and the page has seen a picture too (it says so once one was presented).
            if state.get("frames", 0) >= args.frames and state.get("videoWidth") and state.get("playerState") == "connected":
                break
            chromium.read(time.monotonic() + 0.1)
        state["secondsToFirstFrame"] = first_frame_at
        state["longestFreeze"] = round(longest_freeze, 2)
        state["seconds"] = round(time.monotonic() - started, 2)
        state["consoleErrors"] = chromium.console_errors()
        # Leaving the page: its pagehide handler ends a WebRTC session (a keepalive DELETE, which the browser
        # sends on after the page is gone: give it until about:blank has loaded and a moment more).
        chromium.send("Page.navigate", {"url": "about:blank"})
        chromium.drain(lambda event: event.get("method") == "Page.loadEventFired", 5)
        chromium.drain(lambda event: False, 0.5)
        return state
    finally:
        chromium.close()


def stream_position(stats_url, gop):
    """Seconds since the stream's last keyframe: its media time modulo the GOP (a looped file of one GOP)."""
    with urllib.request.urlopen(stats_url, timeout=5) as response:
        report = json.loads(response.read())
    streams = report.get("streams") or []
    return streams[0]["mediaSeconds"] % gop if streams else None


def viewer_live_edge(args):
    """Starts the MSE viewer FROM..TO seconds into a GOP, then samples its lag for --play seconds."""
    low, high = (float(x) for x in args.join_at.split(":"))
    chromium = Chromium(args.width, args.assets)
    try:
        chromium.open(args.url)
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline and chromium.evaluate("document.readyState") != "complete":
            chromium.read(time.monotonic() + 0.05)
        joined_at = None
        while time.monotonic() < deadline:
            position = stream_position(args.stats, args.gop)
            if position is not None and low <= position <= high:
                if args.setup:
                    chromium.evaluate(args.setup)
                chromium.evaluate("document.getElementById('start').click()")
                joined_at = position
                break
            time.sleep(0.02)  # the stream's media time moves on by itself
        samples, started = [], time.monotonic()
        while joined_at is not None and time.monotonic() < deadline:
            state = chromium.evaluate(VIEWER_LIVE_STATE) or {}
            if state.get("played", 0) > 0 or samples:
                state["at"] = round(time.monotonic() - started, 2)
                if state.get("bufferedEnd") is not None:
                    state["lag"] = round(state["bufferedEnd"] - state["currentTime"], 3)
                samples.append(state)
            if samples and samples[-1]["at"] - samples[0]["at"] >= args.play:
                break
            chromium.read(time.monotonic() + 0.2)
        lags = [s["lag"] for s in samples if "lag" in s]
        last = [s["lag"] for s in samples if "lag" in s and s["at"] >= samples[-1]["at"] - 2.5] if samples else []
        # The lag it started with: the most in the first 1.5 s (the cached GOP is still being appended at first;
        # the player does nothing about the lag before 2.5 s).
        early = [s["lag"] for s in samples if "lag" in s and s["at"] <= samples[0]["at"] + 1.5]
        return {"joinedAt": joined_at, "samples": samples, "firstLag": max(early) if early else None,
                "maxLag": max(lags) if lags else None,
                # The least lag over the last 2.5 s: how far playback runs behind the newest data.
                "finalSlack": min(last) if last else None,
                "live": samples[-1].get("live") if samples else None,
                "playedSeconds": samples[-1].get("played") if samples else 0,
                "videoWidth": samples[-1].get("videoWidth") if samples else 0,
                "consoleErrors": chromium.console_errors()}
    finally:
        chromium.close()


def metrics(url):
    from prometheus_client.parser import text_string_to_metric_families
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    families = list(text_string_to_metric_families(text))  # raises on malformed text
    samples = {}
    for family in families:
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return {"families": len(families), "types": sorted({f.type for f in families}), "samples": samples}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["viewer", "dashboard", "recordings", "metrics", "webrtc", "viewer-frames",
                                         "viewer-live-edge"])
    parser.add_argument("url")
    parser.add_argument("--screenshot")
    parser.add_argument("--play", type=float, default=2.5, help="seconds played (viewer-live-edge: sampled)")
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--whep", help="webrtc: the WHEP resource to POST the offer to")
    parser.add_argument("--frames", type=int, default=10, help="webrtc, viewer-frames: frames decoded before it reports")
    parser.add_argument("--garbage", type=int, default=0, help="webrtc: datagrams of garbage sent to the port while playing")
    parser.add_argument("--authorization", help="webrtc: Authorization header value sent with the WHEP requests")
    parser.add_argument("--stats", help="viewer-live-edge: the sink's /api/stats URL")
    parser.add_argument("--gop", type=float, help="viewer-live-edge: the looped file's GOP (and length), seconds")
    parser.add_argument("--join-at", help="viewer-live-edge: FROM:TO seconds into the GOP to start the viewer at")
    parser.add_argument("--setup", help="viewer-live-edge: JavaScript evaluated in the page before it starts")
    parser.add_argument("--assets", help="serve /assets/* from this directory instead of camflow")
    args = parser.parse_args()
    if args.mode == "webrtc":
        result = webrtc(args)
    elif args.mode == "viewer-frames":
        result = viewer_frames(args)
    elif args.mode == "viewer-live-edge":
        result = viewer_live_edge(args)
    elif args.mode == "metrics":
        result = metrics(args.url)
    elif args.mode == "recordings":
        result = browse(args, RECORDINGS_STATE, lambda s: s["currentTime"] >= args.play)
    elif args.mode == "viewer":
        result = browse(args, VIEWER_STATE, lambda s: s["played"] >= args.play or s["pageErrors"])
    else:
        result = browse(args, DASHBOARD_STATE,
                        lambda s: s["reports"] >= 3 and s["tiles"] and all(t["played"] >= args.play for t in s["tiles"]))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
