#!/usr/bin/python3
"""Headless Chromium watching one camflow stream by WebRTC (the viewer's WHEP
mode, or a bare page with --webrtc-page own), MSE (the viewer page) and LL-HLS
(the viewer's HLS mode) at the same time, one window each, for
`camflow bench latency`.

  latency_viewer.py --base http://127.0.0.1:PORT --ways webrtc,mse,ll-hls --duration SECONDS

Every presented frame is recorded by requestVideoFrameCallback and written
to stdout as a JSON line, its time on CLOCK_MONOTONIC in milliseconds (the
simulator's timeline origin is on the same clock); the bench maps it back
to the frame's send time and says the latency. Lines:

  {"type": "frame", "way": W, "at": MS, "media": SECONDS, "rtp": N|-1, "number": N|-1}
  {"type": "arrival", "way": "mse", "at": MS, "media": SECONDS}      a fragment reached the page
  {"type": "clock", "way": "webrtc", "attribute": "x-camflow-media-clock:..."}
  {"type": "diag", "way": W, "at": MS, ...}                            once a second
  {"type": "error", "way": W, "message": TEXT}

"number" is the frame number read from the picture's top strip (about once
a second): LL-HLS needs it, Chromium's HLS rebasing media times to 0.
Chromium speaks the DevTools protocol over a pipe (fds 3 and 4).
"""

import argparse
import json
import os
import sys
import time
import urllib.request

# The DevTools pipe driver the browser tests use (Tests/Browser/cdp_pipe.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Browser"))
from cdp_pipe import ChromiumPipe  # noqa: E402


class Browser(ChromiumPipe):
    """One headless Chromium, a window (not a background tab) per page."""

    def __init__(self):
        super().__init__(["--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                          "--disable-backgrounding-occluded-windows", "--window-size=1300,800"],
                         profile_prefix="camflow-latency-")

    def send(self, method, params=None, session=None, timeout=30):
        return self.call(method, params, session, timeout)

    def open(self, url, before_load=None):
        target = self.send("Target.createTarget", {"url": "about:blank", "newWindow": True})
        session = self.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})["sessionId"]
        self.send("Runtime.enable", session=session)
        self.send("Page.enable", session=session)
        if before_load:
            self.send("Page.addScriptToEvaluateOnNewDocument", {"source": before_load}, session=session)
        self.send("Page.navigate", {"url": url}, session=session)
        return session

    def evaluate(self, session, expression, await_promise=False):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": await_promise}, session=session)
        if "exceptionDetails" in result:
            return None
        return result["result"].get("value")


# Before the page's scripts: keeps the WHEP answer's text, and records when
# each fragment reaches the page (the WebSocket's message event)
# with its media time (tfdt over the init segment's mdhd timescale): what the
# browser then takes to present it is its own share.
ARRIVALS = """(() => {
  // The WHEP answer as camflow sent it (remoteDescription.sdp is Chromium's rewrite, without unknown attributes).
  const nativeFetch = window.fetch;
  window.fetch = async (...args) => {
    const response = await nativeFetch(...args);
    const url = String(args[0] && args[0].url ? args[0].url : args[0]);
    if (url.includes('/whep/') && response.status === 201) response.clone().text().then((text) => { window.__latAnswer = text; });
    return response;
  };
  const Native = window.WebSocket;
  const arrivals = window.__latArrivals = [];
  let timescale = 0;
  const find = (b, limit, c) => {
    for (let i = 4; i + 8 <= Math.min(b.length, limit); i++)
      if (b[i] === c[0] && b[i + 1] === c[1] && b[i + 2] === c[2] && b[i + 3] === c[3]) return i;
    return -1;
  };
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (event) => {
        if (!(event.data instanceof ArrayBuffer)) return;
        const at = performance.now();
        const bytes = new Uint8Array(event.data);
        const view = new DataView(event.data);
        const mdhd = find(bytes, 4096, [0x6d, 0x64, 0x68, 0x64]);
        if (mdhd > 0) { timescale = view.getUint32(mdhd + (bytes[mdhd + 4] === 1 ? 24 : 16)); return; }
        const tfdt = find(bytes, 512, [0x74, 0x66, 0x64, 0x74]);
        if (tfdt < 0 || !timescale) return;
        const dts = bytes[tfdt + 4] === 1 ? Number(view.getBigUint64(tfdt + 8)) : view.getUint32(tfdt + 8);
        arrivals.push([at, dts / timescale]);
        if (arrivals.length > 20000) arrivals.splice(0, 10000);
      });
    }
  };
})();"""

# Follows the page's video element (re-armed if the page replaces it or the
# callbacks stop) and records every presented frame; about once a second the
# frame number is read from the 32-block strip in the top 16 rows.
RECORDER = """(() => {
  if (window.__lat) return true;
  const lat = window.__lat = { frames: [], video: null, generation: 0, last: 0, lastRead: 0 };
  const canvas = document.createElement('canvas');
  canvas.width = 1280; canvas.height = 16;
  const context = canvas.getContext('2d', { willReadFrequently: true });
  const readNumber = (video) => {
    if (video.videoWidth !== 1280) return -1;
    context.drawImage(video, 0, 0, 1280, 16, 0, 0, 1280, 16);
    const row = context.getImageData(0, 8, 1280, 1).data;
    let number = 0;
    for (let block = 31; block >= 0; block--) number = number * 2 + (row[(block * 40 + 20) * 4] > 128 ? 1 : 0);
    return number;
  };
  const arm = () => {
    const video = window.__latVideo ? window.__latVideo() : document.getElementById('video');
    const stalled = performance.now() - lat.last > 2000;
    if (!video || (video === lat.video && !stalled)) return;
    lat.video = video;
    lat.last = performance.now();
    const generation = ++lat.generation;
    const onFrame = (now, m) => {
      if (generation !== lat.generation) return;
      lat.last = performance.now();
      let number = -1;
      if (lat.last - lat.lastRead >= 1000) { lat.lastRead = lat.last; number = readNumber(video); }
      lat.frames.push([m.expectedDisplayTime, m.presentationTime, m.mediaTime,
                       m.rtpTimestamp === undefined ? -1 : m.rtpTimestamp, number]);
      if (lat.frames.length > 20000) lat.frames.splice(0, 10000);
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  };
  arm();
  setInterval(arm, 500);
  return true;
})()"""

# WebRTC: offers video (recvonly) to the WHEP resource of the page's origin.
WHEP_START = """(() => {
  const w = window.__whep = { status: 'offering' };
  (async () => {
    try {
      const pc = w.pc = new RTCPeerConnection();
      pc.addTransceiver('video', { direction: 'recvonly' });
      const video = w.video = document.createElement('video');
      video.muted = true; video.autoplay = true; video.playsInline = true; video.width = 640;
      document.body.prepend(video);
      window.__latVideo = () => video;
      pc.ontrack = (event) => { video.srcObject = new MediaStream([event.track]); video.play().catch(() => {}); };
      await pc.setLocalDescription(await pc.createOffer());
      let response, text;
      // 404 until camflow has the stream's video.
      for (let attempt = 0; attempt < 60; attempt++) {
        response = await fetch(%s, { method: 'POST', headers: { 'content-type': 'application/sdp' },
                                     body: pc.localDescription.sdp });
        text = await response.text();
        if (response.status !== 404) break;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      if (response.status !== 201) { w.status = 'refused'; w.error = response.status + ' ' + text; return; }
      w.answer = text;
      await pc.setRemoteDescription({ type: 'answer', sdp: text });
      w.status = 'negotiated';
    } catch (error) { w.status = 'error'; w.error = String(error); }
  })();
  return true;
})()"""

POLL = """(async () => {
  const lat = window.__lat || { frames: [] };
  const out = { frames: lat.frames.splice(0), arrivals: (window.__latArrivals || []).splice(0),
                now: performance.now(), wall: Date.now() };
  const video = lat.video;
  if (video) {
    const ranges = video.buffered;
    out.bufferedAhead = ranges.length ? ranges.end(ranges.length - 1) - video.currentTime : 0;
    out.currentTime = video.currentTime;
    out.playbackRate = video.playbackRate;
    out.paused = video.paused;
    const quality = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
    if (quality) { out.droppedFrames = quality.droppedVideoFrames; out.totalFrames = quality.totalVideoFrames; }
  }
  const player = window.camflowViewer && window.camflowViewer.player;
  if (player && player.sourceBuffer) {
    out.timestampOffset = player.sourceBuffer.timestampOffset;
    out.pendingAppends = (player.pending || []).length;
  }
  if (player && player.live) {
    // The player's live-edge keeping: the least lag over its window, what it steers by.
    out.slack = player.live.slack; out.jumps = player.live.jumps; out.speedups = player.live.speedups;
  }
  const viewer = window.camflowViewer;
  // The viewer's WebRTC mode: its peer connection, the answer it took, and whether it fell back to MSE.
  const w = window.__whep || (viewer && viewer.transport === 'webrtc' && player && player.pc
    ? { status: 'negotiated', pc: player.pc, answer: window.__latAnswer } : null);
  if (viewer) { out.transport = viewer.transport; out.fallback = viewer.fallback; }
  if (w) {
    out.status = w.status; out.error = w.error || null; out.answer = w.answer || null;
    if (w.pc) (await w.pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'video') Object.assign(out, {
        jitterBufferDelay: r.jitterBufferDelay, jitterBufferEmittedCount: r.jitterBufferEmittedCount,
        jitterBufferTargetDelay: r.jitterBufferTargetDelay, totalDecodeTime: r.totalDecodeTime,
        framesDecoded: r.framesDecoded, framesDropped: r.framesDropped, packetsLost: r.packetsLost,
        freezeCount: r.freezeCount, totalProcessingDelay: r.totalProcessingDelay });
    });
  }
  return out;
})()"""


def emit(record):
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def wait_for_stream(base, deadline):
    """The first stream camflow's web sink has, once it has one."""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/api/stats", timeout=5) as response:
                streams = json.loads(response.read()).get("streams") or []
                if streams and streams[0].get("name"):
                    return streams[0]["name"]
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("camflow's web sink has no stream")


def wait_for_playlist(base, stream, deadline, segments=3):
    """Until the LL-HLS playlist has `segments` whole segments: Chromium's HLS player gives up for good
    on a first 404, and stays paused at 0 when it starts on a playlist of one segment."""
    url = f"{base}/hls/{urllib.request.quote(stream, safe='')}/index.m3u8"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.read().decode().count("#EXTINF:") >= segments:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"no LL-HLS playlist at {url}")


class Page:
    """One way of watching in its window; converts its times to CLOCK_MONOTONIC."""

    def __init__(self, browser, way, base, stream, deadline, webrtc_page="viewer"):
        self.browser, self.way, self.base, self.stream = browser, way, base, stream
        if way == "ll-hls":
            wait_for_playlist(base, stream, deadline)
        quoted = urllib.request.quote(stream, safe="")
        self.own_page = way == "webrtc" and webrtc_page == "own"
        mode = {"mse": "mse", "ll-hls": "hls", "webrtc": "webrtc"}[way]
        url = f"{base}/viewer" if self.own_page else f"{base}/viewer?mode={mode}&endpoint=/ws/{quoted}&autostart=1"
        self.session = browser.open(url, before_load=ARRIVALS)
        self.started = False
        self.clock_sent = False
        self.offsets = []  # Date.now() - performance.now(), recent polls

    def start(self, slack_target=None):
        if self.started:
            return True
        if self.browser.evaluate(self.session, "document.readyState") != "complete":
            return False
        if self.way == "mse" and slack_target is not None:
            self.browser.evaluate(self.session, f"typeof CamflowPlayer !== 'undefined' && (CamflowPlayer.SLACK_TARGET = {float(slack_target)})")
        if self.own_page:
            whep = f"/whep/{urllib.request.quote(self.stream, safe='')}"
            self.browser.evaluate(self.session, WHEP_START % json.dumps(whep))
        self.browser.evaluate(self.session, RECORDER)
        self.started = True
        return True

    def poll(self):
        state = self.browser.evaluate(self.session, POLL, await_promise=True)
        # Python's CLOCK_REALTIME - CLOCK_MONOTONIC, read right after the page's pair.
        realtime_minus_monotonic = time.time() * 1000 - time.monotonic() * 1000
        if not state:
            return
        # Date.now() is whole milliseconds, under the true wall time: the largest recent difference is the closest.
        self.offsets = (self.offsets + [state["wall"] - state["now"]])[-30:]
        page_to_monotonic = max(self.offsets) - realtime_minus_monotonic

        def monotonic(t):
            return round(t + page_to_monotonic, 3)

        for display, presented, media, rtp, number in state.pop("frames"):
            emit({"type": "frame", "way": self.way, "at": monotonic(display), "presented": monotonic(presented),
                  "media": media, "rtp": rtp, "number": number})
        for at, media in state.pop("arrivals"):
            emit({"type": "arrival", "way": self.way, "at": monotonic(at), "media": media})
        answer = state.pop("answer", None)
        if answer and not self.clock_sent:
            self.clock_sent = True
            line = next((l for l in answer.splitlines() if l.startswith("a=x-camflow-media-clock:")), None)
            if line:
                emit({"type": "clock", "way": self.way, "attribute": line[2:]})
            else:
                emit({"type": "error", "way": self.way, "message": "the WHEP answer has no a=x-camflow-media-clock"})
        if self.way == "webrtc" and not self.own_page and state.get("fallback"):
            emit({"type": "error", "way": self.way, "message": f"the viewer left WebRTC for MSE: {state['fallback']}"})
            raise SystemExit(1)
        if state.get("status") in ("refused", "error"):
            emit({"type": "error", "way": self.way, "message": f"WHEP {state['status']}: {state.get('error')}"})
            raise SystemExit(1)
        state.update({"type": "diag", "way": self.way, "at": monotonic(state.pop("now"))})
        state.pop("wall")
        emit(state)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True, help="camflow's web sink, http://HOST:PORT")
    parser.add_argument("--ways", default="webrtc,mse,ll-hls")
    parser.add_argument("--duration", type=float, default=20, help="seconds of recording after the first frame")
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait for the stream and the first frames")
    parser.add_argument("--webrtc-page", choices=["viewer", "own"], default="viewer",
                        help="webrtc: camflow's viewer in its WebRTC mode, or a bare page of this script's")
    parser.add_argument("--mse-slack-target", type=float,
                        help="experiment: the viewer player's CamflowPlayer.SLACK_TARGET (seconds kept behind the newest data)")
    args = parser.parse_args()
    ways = [w for w in args.ways.split(",") if w]
    deadline = time.monotonic() + args.timeout
    stream = wait_for_stream(args.base, deadline)
    browser = Browser()
    try:
        pages = [Page(browser, way, args.base, stream, deadline, args.webrtc_page) for way in ways]
        while not all(page.start(args.mse_slack_target) for page in pages):
            if time.monotonic() > deadline:
                raise SystemExit("the pages did not load")
            time.sleep(0.1)
        end = time.monotonic() + args.duration
        while time.monotonic() < end:
            next_poll = time.monotonic() + 1
            for page in pages:
                page.poll()
            time.sleep(max(0, next_poll - time.monotonic()))
    finally:
        browser.close()


if __name__ == "__main__":
    main()
