// camflow player: the INSTAR camera's WebSocket protocol into an HTML5 video
// element through Media Source Extensions. Works against camflow's /ws and
// against a camera itself. No dependencies.
"use strict";

// --- MP4 codec strings from an init segment (RFC 6381) ---------------------

const CamflowMP4 = (() => {
  const CONTAINERS = new Set(["moov", "trak", "mdia", "minf", "stbl"]);

  function type(view, offset) {
    return String.fromCharCode(view.getUint8(offset + 4), view.getUint8(offset + 5),
                               view.getUint8(offset + 6), view.getUint8(offset + 7));
  }

  // Calls visit(type, start, end, payloadStart) for each box in [start, end).
  function boxes(view, start, end, visit) {
    let offset = start;
    while (offset + 8 <= end) {
      let size = view.getUint32(offset);
      let header = 8;
      if (size === 1) {
        size = Number(view.getBigUint64(offset + 8));
        header = 16;
      } else if (size === 0) {
        size = end - offset;
      }
      if (size < header || offset + size > end) return;
      visit(type(view, offset), offset, offset + size, offset + header);
      offset += size;
    }
  }

  const hex = (n, width = 2) => n.toString(16).toUpperCase().padStart(width, "0");

  function avc(view, start, end, entryType) {
    let codec = null;
    boxes(view, start, end, (t, s, e, p) => {
      if (t === "avcC" && p + 4 <= e) {
        codec = entryType + "." + hex(view.getUint8(p + 1)) + hex(view.getUint8(p + 2)) + hex(view.getUint8(p + 3));
      }
    });
    return codec;
  }

  function hevc(view, start, end, entryType) {
    let codec = null;
    boxes(view, start, end, (t, s, e, p) => {
      if (t !== "hvcC" || p + 13 > e) return;
      const b1 = view.getUint8(p + 1);
      const space = ["", "A", "B", "C"][b1 >> 6];
      const tier = (b1 >> 5) & 1 ? "H" : "L";
      const profile = b1 & 0x1f;
      let compat = view.getUint32(p + 2);
      let reversed = 0;
      for (let i = 0; i < 32; i++) { reversed = (reversed << 1) | (compat & 1); compat >>>= 1; }
      const constraints = [];
      for (let i = 0; i < 6; i++) constraints.push(view.getUint8(p + 6 + i));
      while (constraints.length && constraints[constraints.length - 1] === 0) constraints.pop();
      const level = view.getUint8(p + 12);
      codec = [entryType, space + profile, (reversed >>> 0).toString(16).toUpperCase(), tier + level]
        .concat(constraints.map((c) => c.toString(16).toUpperCase())).join(".");
    });
    return codec;
  }

  // esds: ES_Descriptor (3) > DecoderConfigDescriptor (4) > DecoderSpecificInfo (5).
  function mp4a(view, start, end) {
    let codec = null;
    boxes(view, start, end, (t, s, e, p) => {
      if (t !== "esds") return;
      let offset = p + 4;
      const descriptor = () => {
        const tag = view.getUint8(offset++);
        let size = 0;
        for (let i = 0; i < 4; i++) {
          const b = view.getUint8(offset++);
          size = (size << 7) | (b & 0x7f);
          if (!(b & 0x80)) break;
        }
        return { tag, size };
      };
      try {
        let d = descriptor();
        if (d.tag !== 3) return;
        offset += 2;
        const flags = view.getUint8(offset++);
        if (flags & 0x80) offset += 2;
        if (flags & 0x40) offset += 1 + view.getUint8(offset);
        if (flags & 0x20) offset += 2;
        d = descriptor();
        if (d.tag !== 4) return;
        const objectType = view.getUint8(offset);
        offset += 13;
        codec = "mp4a." + objectType.toString(16).toUpperCase();
        if (offset < e) {
          d = descriptor();
          if (d.tag === 5) {
            let audioObjectType = view.getUint8(offset) >> 3;
            if (audioObjectType === 31) audioObjectType = 32 + (((view.getUint8(offset) & 7) << 3) | (view.getUint8(offset + 1) >> 5));
            codec += "." + audioObjectType;
          }
        }
      } catch (error) {
        codec = codec || null;
      }
    });
    return codec;
  }

  // Returns { codecs: ["avc1.4D4033", "mp4a.40.2"], video: bool } or null.
  function codecs(bytes) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const found = [];
    let sawMoov = false;
    let video = false;
    const walk = (start, end) => boxes(view, start, end, (t, s, e, p) => {
      if (t === "moov") sawMoov = true;
      if (CONTAINERS.has(t)) return walk(p, e);
      if (t === "stsd") {
        boxes(view, p + 8, e, (entry, es, ee, ep) => {
          if (["avc1", "avc3"].includes(entry)) { video = true; found.push(avc(view, ep + 78, ee, entry)); }
          else if (["hev1", "hvc1"].includes(entry)) { video = true; found.push(hevc(view, ep + 78, ee, entry)); }
          else if (entry === "mp4a") found.push(mp4a(view, ep + 28, ee));
          else found.push(entry);
        });
      }
    });
    walk(0, view.byteLength);
    if (!sawMoov) return null;
    return { codecs: found.filter(Boolean), video };
  }

  // Whether bytes begin with an init segment (ftyp or moov).
  function isInitSegment(bytes) {
    if (bytes.byteLength < 8) return false;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const t = type(view, 0);
    return t === "ftyp" || t === "moov";
  }

  return { codecs, isInitSegment };
})();

// --- The player ---------------------------------------------------------------

class CamflowPlayer {
  // options: url, channel (null for "livestream"), onStatus(state, detail),
  // onMessage(entry), onError(text), onCodecs(mime), reconnect (true)
  constructor(video, options) {
    this.video = video;
    this.options = Object.assign({ reconnect: true, keepAliveEvery: 10, liveLatency: 3 }, options);
    this.state = "disconnected";
    this.socket = null;
    this.mediaSource = null;
    this.sourceBuffer = null;
    this.pending = [];
    this.mime = null;
    this.received = 0;
    this.bytes = 0;
    this.attempt = 0;
    this.wanted = false;
    this.timer = null;
    this.errors = [];
    this.playbackStart = null;
  }

  start() {
    this.wanted = true;
    this.attempt = 0;
    this.connect();
  }

  stop() {
    this.wanted = false;
    clearTimeout(this.timer);
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send("stop");
    if (this.socket) this.socket.close(1000, "stopped");
    this.socket = null;
    this.resetMedia();
    this.setState("disconnected", "stopped");
  }

  setState(state, detail) {
    this.state = state;
    if (this.options.onStatus) this.options.onStatus(state, detail || "");
  }

  error(text) {
    this.errors.push(text);
    if (this.options.onError) this.options.onError(text);
  }

  connect() {
    clearTimeout(this.timer);
    this.resetMedia();
    this.setState("connecting", this.options.url.replace(/\/\/[^@/]*@/, "//"));
    let socket;
    try {
      socket = new WebSocket(this.options.url);
    } catch (e) {
      this.error("cannot open " + this.options.url + ": " + e.message);
      return this.scheduleReconnect();
    }
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    this.sinceKeepAlive = 0;
    socket.onopen = () => {
      this.attempt = 0;
      this.setState("connected", "");
      const start = this.options.channel ? "livestream/" + this.options.channel : "livestream";
      socket.send(start);
      this.log("out", start);
    };
    socket.onmessage = (event) => this.onMessage(event.data);
    socket.onerror = () => {};
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      const reason = event.code === 1006 ? "connection lost (or refused: wrong credentials?)"
        : "closed (" + event.code + (event.reason ? ", " + event.reason : "") + ")";
      this.setState("disconnected", reason);
      this.scheduleReconnect();
    };
  }

  scheduleReconnect() {
    if (!this.wanted || !this.options.reconnect) return;
    const delay = Math.min(30000, 500 * Math.pow(2, this.attempt)) * (0.75 + Math.random() * 0.5);
    this.attempt += 1;
    this.setState("reconnecting", "in " + (delay / 1000).toFixed(1) + " s");
    this.timer = setTimeout(() => this.connect(), delay);
  }

  log(direction, text) {
    if (this.options.onMessage) this.options.onMessage({ direction, text, at: new Date() });
  }

  onMessage(data) {
    this.received += 1;
    this.sinceKeepAlive += 1;
    if (this.sinceKeepAlive >= this.options.keepAliveEvery && this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send("keep-alive");
      this.sinceKeepAlive = 0;
    }
    if (typeof data === "string") {
      this.log("in", data);
      if (data.startsWith("error:")) this.error(data);
      return;
    }
    const bytes = new Uint8Array(data);
    this.bytes += bytes.byteLength;
    if (CamflowMP4.isInitSegment(bytes)) {
      this.log("in", "init segment, " + bytes.byteLength + " bytes");
      this.onInitSegment(bytes);
    } else {
      this.log("in", "fragment, " + bytes.byteLength + " bytes");
      this.append(bytes);
    }
  }

  onInitSegment(bytes) {
    const parsed = CamflowMP4.codecs(bytes);
    if (!parsed || parsed.codecs.length === 0) {
      this.error("the init segment names no codec camflow can read");
      return;
    }
    const mime = 'video/mp4; codecs="' + parsed.codecs.join(", ") + '"';
    if (!window.MediaSource || !MediaSource.isTypeSupported(mime)) {
      this.unsupported = mime;
      this.error("this browser cannot play " + mime + (parsed.codecs.some((c) => /^hev1|^hvc1/.test(c))
        ? " (H.265/HEVC is not supported here; use the camera's H.264 channel)" : ""));
      return;
    }
    if (this.options.onCodecs) this.options.onCodecs(mime);
    if (this.sourceBuffer && mime === this.mime) {
      this.append(bytes);
      return;
    }
    if (this.sourceBuffer && this.sourceBuffer.changeType) {
      this.sourceBuffer.changeType(mime);
      this.mime = mime;
      this.append(bytes);
      return;
    }
    this.resetMedia();
    this.mime = mime;
    this.unsupported = null;
    this.mediaSource = new MediaSource();
    this.video.src = URL.createObjectURL(this.mediaSource);
    this.pending = [bytes];
    this.mediaSource.addEventListener("sourceopen", () => {
      try {
        this.sourceBuffer = this.mediaSource.addSourceBuffer(mime);
        this.sourceBuffer.mode = "segments";
        this.sourceBuffer.addEventListener("updateend", () => this.pump());
        this.sourceBuffer.addEventListener("error", () => this.error("the browser could not decode a fragment"));
        this.pump();
      } catch (e) {
        this.error("cannot play " + mime + ": " + e.message);
      }
    }, { once: true });
  }

  append(bytes) {
    if (!this.mediaSource || this.unsupported) return;
    this.pending.push(bytes);
    if (this.pending.length > 200) this.pending.splice(1, this.pending.length - 100);
    this.pump();
  }

  pump() {
    const buffer = this.sourceBuffer;
    if (!buffer || buffer.updating || this.mediaSource.readyState !== "open") return;
    this.followLiveEdge();
    if (this.trim()) return;
    const next = this.pending.shift();
    if (!next) return;
    try {
      buffer.appendBuffer(next);
    } catch (e) {
      if (e.name === "QuotaExceededError") {
        this.pending.unshift(next);
        this.trim(true);
      } else {
        this.error("append failed: " + e.message);
      }
    }
  }

  // Drops what lies far behind the playhead, so memory stays bounded.
  trim(force) {
    const buffer = this.sourceBuffer;
    if (!buffer.buffered.length) return false;
    const start = buffer.buffered.start(0);
    const keep = force ? 5 : 30;
    if (this.video.currentTime - start > keep + 10 || (force && this.video.currentTime - start > keep)) {
      buffer.remove(start, this.video.currentTime - keep);
      return true;
    }
    return false;
  }

  // Starts playback at the first buffered picture and stays near the live edge.
  followLiveEdge() {
    const ranges = this.sourceBuffer.buffered;
    if (!ranges.length) return;
    const end = ranges.end(ranges.length - 1);
    const video = this.video;
    if (this.playbackStart === null) {
      this.playbackStart = ranges.start(0);
      video.currentTime = ranges.start(0);
      video.muted = true;
      const playing = video.play();
      if (playing) playing.catch((e) => this.error("playback did not start: " + e.message));
    } else if (end - video.currentTime > this.options.liveLatency + 2) {
      video.currentTime = end - this.options.liveLatency / 2;
    } else if (video.currentTime < ranges.start(0)) {
      video.currentTime = ranges.start(0);
    }
  }

  // Seconds played since playback started.
  playedSeconds() {
    return this.playbackStart === null ? 0 : this.video.currentTime - this.playbackStart;
  }

  resetMedia() {
    if (this.mediaSource) {
      try { if (this.mediaSource.readyState === "open") this.mediaSource.endOfStream(); } catch (e) { /* closing */ }
      URL.revokeObjectURL(this.video.src);
      this.video.removeAttribute("src");
      this.video.load();
    }
    this.mediaSource = null;
    this.sourceBuffer = null;
    this.pending = [];
    this.mime = null;
    this.playbackStart = null;
  }
}

// The WebSocket URL of a camflow (or camera) endpoint, with credentials if given.
function camflowSocketURL({ protocol, host, port, endpoint, username, password }) {
  const auth = username ? encodeURIComponent(username) + ":" + encodeURIComponent(password || "") + "@" : "";
  const bracketed = host.includes(":") && !host.startsWith("[") ? "[" + host + "]" : host;
  const path = endpoint.startsWith("/") ? endpoint : "/" + endpoint;
  return protocol + "://" + auth + bracketed + (port ? ":" + port : "") + path;
}
