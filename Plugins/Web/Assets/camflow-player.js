// camflow player: the INSTAR camera's WebSocket protocol into an HTML5 video
// element through Media Source Extensions (works against camflow's /ws and
// against a camera itself), and camflow's WHEP (WebRTC) playback. No dependencies.
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

  // A full box's version.
  const fullBox = (view, p) => view.getUint8(p);

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

  // Each track's timescale and default sample flags, and which track is video, from an init segment:
  // what fragmentStart needs to tell where a fragment's keyframes are.
  function tracks(bytes) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const result = { video: null, timescales: {}, defaultFlags: {} };
    boxes(view, 0, view.byteLength, (t, s, e, p) => {
      if (t !== "moov") return;
      boxes(view, p, e, (t2, s2, e2, p2) => {
        if (t2 === "mvex") {
          boxes(view, p2, e2, (t3, s3, e3, p3) => {
            if (t3 === "trex" && p3 + 24 <= e3) result.defaultFlags[view.getUint32(p3 + 4)] = view.getUint32(p3 + 20);
          });
        }
        if (t2 !== "trak") return;
        let id = null, timescale = null, handler = null;
        boxes(view, p2, e2, (t3, s3, e3, p3) => {
          if (t3 === "tkhd" && p3 + 24 <= e3) id = view.getUint32(p3 + (fullBox(view, p3) === 1 ? 20 : 12));
          if (t3 !== "mdia") return;
          boxes(view, p3, e3, (t4, s4, e4, p4) => {
            if (t4 === "mdhd" && p4 + 24 <= e4) timescale = view.getUint32(p4 + (fullBox(view, p4) === 1 ? 20 : 12));
            if (t4 === "hdlr" && p4 + 12 <= e4) handler = type(view, p4 + 4);
          });
        });
        if (id === null || !timescale) return;
        result.timescales[id] = timescale;
        if (handler === "vide" && result.video === null) result.video = id;
      });
    });
    return result.video === null ? null : result;
  }

  // Where a fragment's video starts (seconds of decode time) and whether it starts with a keyframe; null when the
  // fragment has no video of the track or cannot be read.
  function fragmentStart(bytes, known) {
    if (!known) return null;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let found = null;
    boxes(view, 0, view.byteLength, (t, s, e, p) => {
      if (t !== "moof" || found) return;
      boxes(view, p, e, (t2, s2, e2, p2) => {
        if (t2 !== "traf" || found) return;
        let track = null, flags = null, decodeTime = null, sampleFlags = null;
        boxes(view, p2, e2, (t3, s3, e3, p3) => {
          if (t3 === "tfhd" && p3 + 8 <= e3) {
            const f = view.getUint32(p3) & 0xffffff;
            track = view.getUint32(p3 + 4);
            let offset = p3 + 8 + (f & 0x01 ? 8 : 0) + (f & 0x02 ? 4 : 0) + (f & 0x08 ? 4 : 0) + (f & 0x10 ? 4 : 0);
            if (f & 0x20 && offset + 4 <= e3) flags = view.getUint32(offset);
          } else if (t3 === "tfdt" && p3 + 8 <= e3) {
            decodeTime = fullBox(view, p3) === 1 && p3 + 12 <= e3 ? Number(view.getBigUint64(p3 + 4)) : view.getUint32(p3 + 4);
          } else if (t3 === "trun" && p3 + 8 <= e3 && sampleFlags === null) {
            const f = view.getUint32(p3) & 0xffffff;
            let offset = p3 + 8 + (f & 0x01 ? 4 : 0);
            if (f & 0x04) { if (offset + 4 <= e3) sampleFlags = view.getUint32(offset); }
            else if (f & 0x400) {
              offset += (f & 0x100 ? 4 : 0) + (f & 0x200 ? 4 : 0);
              if (offset + 4 <= e3) sampleFlags = view.getUint32(offset);
            }
          }
        });
        if (track !== known.video || decodeTime === null) return;
        const first = sampleFlags ?? flags ?? known.defaultFlags[track] ?? 0;
        // sample_is_non_sync_sample (ISO/IEC 14496-12 8.8.3.1)
        found = { time: decodeTime / known.timescales[track], keyframe: (first & 0x10000) === 0 };
      });
    });
    return found;
  }

  return { codecs, isInitSegment, tracks, fragmentStart };
})();

// --- The player ---------------------------------------------------------------

class CamflowPlayer {
  // options: url, channel (null for "livestream"), onStatus(state, detail),
  // onMessage(entry), onError(text), onCodecs(mime), reconnect (true),
  // liveEdge (true): stay near the newest data (see followLiveEdge)
  constructor(video, options) {
    this.video = video;
    this.options = Object.assign({ reconnect: true, keepAliveEvery: 10, liveEdge: true }, options);
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
    this.tracks = null;
    // Decode times (s) of the keyframes appended and still buffered: where the buffer may be cut (see trim).
    this.keyframes = [];
    // [time (ms), seconds buffered ahead of the playhead], sampled every 100 ms while playing.
    this.lagSamples = [];
    this.lagSince = 0;
    this.lagTimer = null;
    // What followLiveEdge did, for the page and its tests.
    this.live = { slack: null, lag: null, rate: 1, speedups: 0, jumps: 0, trims: 0, unfreezes: 0 };
  }

  start() {
    this.wanted = true;
    this.attempt = 0;
    this.startedAt = performance.now();
    this.firstFrameSeconds = null;
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
      this.noteKeyframe(bytes);
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
    try { this.tracks = CamflowMP4.tracks(bytes); } catch (e) { this.tracks = null; }
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

  noteKeyframe(bytes) {
    let start = null;
    try { start = CamflowMP4.fragmentStart(bytes, this.tracks); } catch (e) { return; } // trim's fallback applies
    if (!start) return;
    // How much media one fragment holds (a frame, a second...): fresh data, not delay, at the join.
    if (this.lastFragmentStart !== undefined && start.time > this.lastFragmentStart) {
      this.fragmentStep = start.time - this.lastFragmentStart;
    }
    this.lastFragmentStart = start.time;
    if (!start.keyframe) return;
    const last = this.keyframes[this.keyframes.length - 1];
    // A timeline that starts over (a new init segment, a source that restarted) leaves nothing to cut by.
    if (last !== undefined && start.time <= last) this.keyframes = [];
    this.keyframes.push(start.time);
    if (this.keyframes.length > 1000) this.keyframes.splice(0, 500);
  }

  // Drops what lies behind the playhead, so memory stays bounded over hours: everything before the latest keyframe
  // that is at least `keepBehind` seconds old. The cut is made at a keyframe, and only where a later keyframe is
  // already behind the playhead, because removing a frame also removes every frame after it up to the next keyframe
  // (MSE's coded frame removal): a cut inside the playing GOP would take away what is being shown. Without
  // keyframe times (a fragment camflow cannot read), only what is over 40 s old goes.
  trim(force) {
    const buffer = this.sourceBuffer;
    if (!buffer.buffered.length) return false;
    const start = buffer.buffered.start(0);
    const now = this.video.currentTime;
    const keepBehind = force ? 2 : 4;
    let cut = null;
    for (let i = 0; i + 1 < this.keyframes.length; i++) {
      if (this.keyframes[i] <= now - keepBehind && this.keyframes[i + 1] <= now) cut = this.keyframes[i];
    }
    if (cut !== null && cut - start >= (force ? 0.1 : 2)) {
      buffer.remove(start, cut);
      this.keyframes = this.keyframes.filter((time) => time >= cut);
      this.live.trims += 1;
      return true;
    }
    const keep = force ? 5 : 30;
    if (cut === null && (now - start > keep + 10 || (force && now - start > keep))) {
      buffer.remove(start, now - keep);
      this.live.trims += 1;
      return true;
    }
    return false;
  }

  // Starts playback at the first buffered picture, then keeps it near the newest data. Without this the delay a
  // viewer starts with stays for as long as it watches, and grows: camflow hands a joining viewer its cache from the
  // last keyframe (up to a GOP behind the newest frame), and after each stall (a fragment late on the network)
  // playback resumes where it stopped, not at the newest frame, so an hour of small stalls adds up to seconds.
  followLiveEdge() {
    const ranges = this.sourceBuffer.buffered;
    if (!ranges.length) return;
    const video = this.video;
    if (this.playbackStart === null) {
      this.playbackStart = ranges.start(0);
      if (video.requestVideoFrameCallback) {
        video.requestVideoFrameCallback(() => { this.firstFrameSeconds = (performance.now() - this.startedAt) / 1000; });
      }
      video.currentTime = ranges.start(0);
      video.muted = true;
      const playing = video.play();
      if (playing) playing.catch((e) => this.error("playback did not start: " + e.message));
      this.startLagSampling();
    } else if (video.currentTime < ranges.start(0)) {
      video.currentTime = ranges.start(0);
    }
  }

  startLagSampling() {
    this.joined = false;
    clearInterval(this.lagTimer);
    this.lagSamples = [];
    this.lagSince = performance.now();
    if (this.options.liveEdge) this.lagTimer = setInterval(() => this.steer(), 100);
  }

  // The slack is what is buffered ahead of the playhead just before new data arrives: the least lag over the last
  // LAG_WINDOW ms. Right after a fragment arrives the lag is a whole fragment longer (a camera sending one fragment
  // per second is always up to 1 s ahead of the playhead), which is no delay to win back; the slack is. Playback
  // speeds up a little (SPEEDUP, unnoticeable in a camera picture) while the slack is over SLACK_TARGET + 0.15 s and
  // returns to normal speed once it is down to SLACK_TARGET + 0.05 s; over FAR_BEHIND it jumps instead, since at
  // 10 % faster each second behind takes 10 s to win back. Some slack stays, so a fragment that comes a little late
  // does not stall the picture.
  steer() {
    const buffer = this.sourceBuffer;
    const video = this.video;
    if (!buffer || !buffer.buffered.length || video.paused || video.seeking) return;
    const now = performance.now();
    // A hole in the buffer (a camera that lost frames sends the next fragment later in media time): playback
    // stops at its edge and would wait there for ever, so it steps over to the data after it.
    const ranges = buffer.buffered;
    for (let i = 0; i + 1 < ranges.length; i++) {
      if (video.currentTime >= ranges.end(i) - 0.1 && video.currentTime < ranges.start(i + 1)) {
        video.currentTime = ranges.start(i + 1) + 0.01;
        this.live.gapJumps = (this.live.gapJumps || 0) + 1;
        return;
      }
    }
    const lag = buffer.buffered.end(buffer.buffered.length - 1) - video.currentTime;
    this.lagSamples.push([now, lag]);
    while (this.lagSamples.length && this.lagSamples[0][0] < now - CamflowPlayer.LAG_WINDOW) this.lagSamples.shift();
    this.live.lag = lag;
    this.watchFrozenPicture(now);
    // At the join camflow sends its cache from the last keyframe at once: up to a GOP behind the newest frame.
    // Once it is in (JOIN_SETTLE), playback jumps to the newest data less one fragment and the target, so a viewer
    // sees now at once rather than after the 1.1x catch-up (10 s per second behind).
    if (!this.joined && now - this.lagSince >= CamflowPlayer.JOIN_SETTLE) {
      this.joined = true;
      const behind = lag - (this.fragmentStep || 0) - CamflowPlayer.SLACK_TARGET;
      if (CamflowPlayer.JOIN_CATCH_UP && behind > 0.25) {
        video.currentTime += behind;
        this.live.jumps += 1;
        this.lagSamples = [];
        this.lagSince = now;
        return;
      }
    }
    // Act only on a full window: it must hold a moment just before an arrival.
    if (now - this.lagSince < CamflowPlayer.LAG_WINDOW) return;
    const slack = Math.min(...this.lagSamples.map((sample) => sample[1]));
    this.live.slack = slack;
    if (slack > CamflowPlayer.FAR_BEHIND) {
      video.currentTime += slack - CamflowPlayer.SLACK_TARGET;
      this.setRate(1);
      this.live.jumps += 1;
      // The samples before the jump say nothing about the new position.
      this.lagSamples = [];
      this.lagSince = now;
    } else if (slack > CamflowPlayer.SLACK_TARGET + 0.15 && video.playbackRate === 1) {
      this.setRate(CamflowPlayer.SPEEDUP);
      this.live.speedups += 1;
    } else if (slack <= CamflowPlayer.SLACK_TARGET + 0.05 && video.playbackRate !== 1) {
      this.setRate(1);
    }
  }

  // Chromium (156) can stop showing pictures while the sound and the clock go on: seen when data overlapping what
  // is buffered (a looped or restarted source's timeline, re-based) is appended close to the playhead. A second of
  // playback without a new picture makes it seek to the next buffered keyframe, where decoding starts afresh.
  watchFrozenPicture(now) {
    const video = this.video;
    // A hidden page's video may rightly get no pictures (browsers stop decoding what nobody sees).
    if (!video.getVideoPlaybackQuality || !this.tracks || document.hidden) {
      this.frozenWatch = null;
      return;
    }
    const frames = video.getVideoPlaybackQuality().totalVideoFrames;
    const watch = this.frozenWatch;
    if (!watch || frames !== watch.frames || video.currentTime < watch.time) {
      this.frozenWatch = { frames, time: video.currentTime };
      return;
    }
    if (video.currentTime - watch.time < 1) return;
    const ranges = this.sourceBuffer.buffered;
    const end = ranges.end(ranges.length - 1);
    const next = this.keyframes.find((time) => time > video.currentTime + 0.05 && time < end);
    this.frozenWatch = null;
    this.live.unfreezes += 1;
    video.currentTime = next !== undefined ? next + 0.1 : video.currentTime;
    this.lagSamples = [];
    this.lagSince = now;
  }

  setRate(rate) {
    this.video.playbackRate = rate;
    this.live.rate = rate;
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
    this.keyframes = [];
    this.lastFragmentStart = undefined;
    this.fragmentStep = 0;
    clearInterval(this.lagTimer);
    this.lagTimer = null;
    this.video.playbackRate = 1;
    this.live.rate = 1;
  }
}

CamflowPlayer.LAG_WINDOW = 2500;
// 0.15 s of slack plays one-fragment-per-frame cameras about 0.2 s behind on loopback; less stalled on a loaded
// 2-core machine (measured with camflow bench latency --mse-slack-target).
CamflowPlayer.SLACK_TARGET = 0.15;
CamflowPlayer.JOIN_SETTLE = 500;
CamflowPlayer.JOIN_CATCH_UP = true;
CamflowPlayer.SPEEDUP = 1.1;
CamflowPlayer.FAR_BEHIND = 2.5;

// --- WebRTC (WHEP) ------------------------------------------------------------

// Plays a camflow stream over WebRTC: one recvonly offer POSTed to the web sink's WHEP resource (/whep/NAME), its
// answer applied, the video track shown. camflow is an ICE-lite agent that puts its one candidate in the answer and
// learns the browser's address from the browser's own connectivity checks, so the offer goes out at once: no
// trickle (camflow has no PATCH), and no waiting for the browser to gather candidates camflow does not need.
// Every failure ends in onFailure(reason, { status, refusal }) once, so the page can fall back to MSE.
class CamflowWebRTCPlayer {
  // options: url (the WHEP resource), authorization (an Authorization header value; without one the browser sends
  // the credentials it has for the page), firstFrameTimeout (ms), onStatus(state, detail), onFailure(reason, info),
  // onNote(text)
  constructor(video, options) {
    this.video = video;
    this.options = Object.assign({ firstFrameTimeout: 6000 }, options);
    this.state = "disconnected";
    this.pc = null;
    this.location = null;
    this.wanted = false;
    this.failed = null;
    this.timer = null;
    this.frames = 0;
    this.firstFrameSeconds = null;
    this.postStatus = null;
    this.startTime = null;
    this.errors = [];
  }

  setState(state, detail) {
    this.state = state;
    if (this.options.onStatus) this.options.onStatus(state, detail || "");
  }

  headers(extra) {
    return Object.assign(this.options.authorization ? { authorization: this.options.authorization } : {}, extra);
  }

  async start() {
    this.wanted = true;
    this.startedAt = performance.now();
    this.setState("connecting", "WebRTC");
    this.timer = setTimeout(() => this.fail("no picture over WebRTC within " + this.options.firstFrameTimeout / 1000
      + " s (is camflow's WebRTC UDP port reachable from here?)"), this.options.firstFrameTimeout);
    try {
      const pc = this.pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
      pc.addTransceiver("video", { direction: "recvonly" });
      // Audio is offered too, so the answer says plainly whether any comes: camflow rejects it (AAC has no place in
      // WebRTC, and camflow does not transcode).
      pc.addTransceiver("audio", { direction: "recvonly" });
      pc.ontrack = (event) => { if (event.track.kind === "video") this.attach(event.track); };
      pc.onconnectionstatechange = () => {
        if (pc !== this.pc) return;
        if (pc.connectionState === "failed") this.fail("the WebRTC connection failed (ICE or DTLS): is camflow's UDP port reachable from here?");
        if (pc.connectionState === "connected") this.setState("connecting", "WebRTC connected, waiting for a picture");
      };
      await pc.setLocalDescription(await pc.createOffer());
      let response;
      try {
        response = await fetch(this.options.url, { method: "POST", headers: this.headers({ "content-type": "application/sdp" }),
                                                   body: pc.localDescription.sdp, cache: "no-store", credentials: "include" });
      } catch (error) {
        return this.fail("the WHEP request failed: " + error.message);
      }
      const text = await response.text();
      this.postStatus = response.status;
      if (!this.wanted || this.failed) return;
      if (response.status !== 201) {
        return this.fail("WebRTC refused (" + response.status + "): " + text.trim(), { status: response.status, refusal: text.trim() });
      }
      const location = response.headers.get("location");
      if (location) this.location = new URL(location, new URL(this.options.url, document.baseURI)).href;
      if (/^m=audio 0 /m.test(text) && this.options.onNote) {
        this.options.onNote("video only over WebRTC: AAC audio cannot be carried, and camflow does not transcode");
      }
      await pc.setRemoteDescription({ type: "answer", sdp: text });
    } catch (error) {
      this.fail("WebRTC failed: " + error.message);
    }
  }

  attach(track) {
    const video = this.video;
    video.srcObject = new MediaStream([track]);
    video.muted = true;
    const playing = video.play();
    if (playing) playing.catch(() => {});
    const frame = () => {
      if (!this.pc || video.srcObject === null) return;
      this.frames += 1;
      if (this.frames === 1) {
        clearTimeout(this.timer);
        this.firstFrameSeconds = (performance.now() - this.startedAt) / 1000;
        this.startTime = video.currentTime;
        this.setState("connected", "WebRTC");
      }
      if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(frame);
    };
    // Without per-frame callbacks (older browsers), the first picture is when playback starts.
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(frame);
    else video.addEventListener("playing", frame, { once: true });
  }

  fail(reason, info) {
    if (!this.wanted || this.failed) return;
    this.failed = reason;
    this.errors.push(reason);
    this.stop(reason);
    if (this.options.onFailure) this.options.onFailure(reason, info || {});
  }

  // Ends the session: DELETE on its Location (keepalive, so it still goes out while the page unloads), then the
  // peer connection is closed; the other way round, its DTLS close would end the session before the DELETE came.
  stop(detail) {
    this.wanted = false;
    clearTimeout(this.timer);
    const pc = this.pc;
    const close = () => { if (pc) pc.close(); };
    if (this.location) {
      fetch(this.location, { method: "DELETE", headers: this.headers({}), keepalive: true, credentials: "include" })
        .catch(() => {}).finally(close);
      setTimeout(close, 2000);
      this.location = null;
    } else {
      close();
    }
    this.pc = null;
    if (this.video.srcObject) this.video.srcObject = null;
    this.setState("disconnected", detail || "stopped");
  }

  // Seconds played since the first picture.
  playedSeconds() {
    return this.startTime === null || !this.pc ? 0 : this.video.currentTime - this.startTime;
  }

  // The receiver's counters (getStats), for the page and its tests.
  async stats() {
    const out = { frames: this.frames, firstFrameSeconds: this.firstFrameSeconds, postStatus: this.postStatus };
    if (!this.pc) return out;
    (await this.pc.getStats()).forEach((report) => {
      if (report.type === "transport") Object.assign(out, { iceState: report.iceState, dtlsState: report.dtlsState });
      if (report.type === "inbound-rtp" && report.kind === "video") {
        Object.assign(out, { framesDecoded: report.framesDecoded || 0, frameWidth: report.frameWidth,
                             frameHeight: report.frameHeight, packetsLost: report.packetsLost,
                             jitterBufferDelay: report.jitterBufferDelay,
                             jitterBufferEmittedCount: report.jitterBufferEmittedCount });
      }
    });
    return out;
  }
}

// The WebSocket URL of a camflow (or camera) endpoint, with credentials if given.
function camflowSocketURL({ protocol, host, port, endpoint, username, password }) {
  const auth = username ? encodeURIComponent(username) + ":" + encodeURIComponent(password || "") + "@" : "";
  const bracketed = host.includes(":") && !host.startsWith("[") ? "[" + host + "]" : host;
  const path = endpoint.startsWith("/") ? endpoint : "/" + endpoint;
  return protocol + "://" + auth + bracketed + (port ? ":" + port : "") + path;
}
