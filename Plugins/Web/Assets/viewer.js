// The camera client page: connection form, badge, video, message log, toasts.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const fields = ["mode", "protocol", "host", "port", "endpoint", "channel", "username"];

  // Prefilled for the camflow that serves this page; a query string or the
  // last values used override it.
  const saved = JSON.parse(localStorage.getItem("camflow-viewer") || "{}");
  const defaults = {
    protocol: location.protocol === "https:" ? "wss" : "ws",
    host: location.hostname,
    port: location.port,
    mode: "mse",
    endpoint: "/ws",
    channel: "",
    username: "",
  };
  for (const name of fields) $(name).value = params.get(name) ?? saved[name] ?? defaults[name];

  // transport: how it plays now (webrtc, mse, hls); fallback: why WebRTC was left for MSE.
  const state = { player: null, messages: 0, errors: [], transport: null, fallback: null, notes: [],
                  codecs: {}, attempt: 0 };
  window.camflowViewer = state;

  function toast(text, kind) {
    const element = document.createElement("div");
    element.className = "toast " + (kind || "info");
    element.textContent = text;
    $("toasts").appendChild(element);
    setTimeout(() => element.remove(), 5000);
  }

  function setBadge(status, detail) {
    const badge = $("badge");
    badge.className = "badge " + status;
    badge.textContent = status + (detail ? ": " + detail : "");
  }

  function logMessage(entry) {
    state.messages += 1;
    $("message-count").textContent = state.messages;
    const item = document.createElement("li");
    item.className = entry.direction;
    item.textContent = entry.at.toLocaleTimeString() + (entry.direction === "out" ? "  → " : "  ← ") + entry.text;
    const log = $("log");
    log.prepend(item);
    while (log.children.length > 200) log.lastChild.remove();
  }

  // One line under the picture saying how it plays, and why not the way asked for.
  function setTransport(text, kind) {
    $("transport").textContent = text;
    $("transport").className = kind === "error" ? "error" : "muted";
  }

  $("connection").addEventListener("submit", (event) => {
    event.preventDefault();
    if (state.player) state.player.stop();
    state.player = null;
    const attempt = ++state.attempt;
    const values = Object.fromEntries(fields.map((name) => [name, $(name).value.trim()]));
    localStorage.setItem("camflow-viewer", JSON.stringify(values));
    state.fallback = null;
    state.notes = [];
    setTransport("", "info");
    $("start").disabled = true;
    $("stop").disabled = false;
    if (values.mode === "hls") { playHLS(values, attempt); return; }
    $("hls-note").hidden = true;
    if (values.mode === "webrtc") { playWebRTC(values, attempt); return; }
    playMSE(values);
  });

  function playMSE(values) {
    state.transport = "mse";
    const url = camflowSocketURL(Object.assign({}, values, { password: $("password").value }));
    state.player = new CamflowPlayer($("video"), {
      url,
      channel: values.channel || null,
      onStatus: (status, detail) => {
        setBadge(status, detail);
        if (status === "connected") toast("connected", "ok");
        if (status === "disconnected" && detail !== "stopped") toast("disconnected: " + detail, "warn");
      },
      onMessage: logMessage,
      onError: (text) => {
        state.errors.push(text);
        toast(text, "error");
        // A codec the browser lacks stays on the page, not only in a toast.
        if (text.includes("cannot play")) { $("codec").textContent = text; $("codec").className = "error"; }
      },
      onCodecs: (mime) => { $("codec").textContent = mime; },
    });
    state.player.start();
  }

  // The stream named in the endpoint (/ws/NAME), else the server's first (what /ws serves).
  async function streamName(values) {
    const named = values.endpoint.replace(/^\/ws\/?/, "");
    if (named) {
      try { return decodeURIComponent(named); } catch { return named; } // the endpoint is already URL-encoded
    }
    await state.statsLoaded;
    return state.defaultStream || "";
  }

  // WebRTC over camflow's WHEP with the form's server and credentials (the WebSocket's), and MSE when it cannot be
  // had: a stream with B-frames (browsers' WebRTC decoders do not take them), H.265, a UDP port not reachable, no
  // picture in time. The reason stays on the page.
  async function playWebRTC(values, attempt) {
    state.transport = "webrtc";
    const stream = await streamName(values);
    if (attempt !== state.attempt) return; // stopped, or started again, meanwhile
    const scheme = values.protocol === "wss" ? "https:" : "http:";
    const bracketed = values.host.includes(":") && !values.host.startsWith("[") ? "[" + values.host + "]" : values.host;
    const url = scheme + "//" + bracketed + (values.port ? ":" + values.port : "") + "/whep/" + encodeURIComponent(stream);
    const password = $("password").value;
    const authorization = values.username ? "Basic " + base64(values.username + ":" + password) : null;
    if (values.channel) state.notes.push("WebRTC plays the stream itself; the channel applies to MSE");
    setTransport("WebRTC: connecting to " + url, "info");
    const player = state.player = new CamflowWebRTCPlayer($("video"), {
      url,
      authorization,
      onStatus: (status, detail) => {
        if (state.player !== player) return;
        setBadge(status, detail);
        if (status === "connected") {
          toast("connected over WebRTC", "ok");
          setTransport(["WebRTC: first picture after " + player.firstFrameSeconds.toFixed(2) + " s"].concat(state.notes).join("; "), "info");
        }
      },
      // Only a stream with audio loses something.
      onNote: (text) => { if (/mp4a/.test(state.codecs[stream] || "mp4a")) state.notes.push(text); },
      onFailure: (reason) => {
        if (state.player !== player) return;
        state.errors.push(reason);
        state.fallback = reason;
        setTransport(reason + ". Playing over MSE instead.", "error");
        toast(reason, "warn");
        playMSE(values);
      },
    });
    player.start();
  }

  function base64(text) {
    return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
  }

  // HLS plays natively where the browser has it (Safari, iOS, Android, some
  // TVs); elsewhere the page says so and gives the URL for VLC or ffplay.
  async function playHLS(values, attempt) {
    state.transport = "hls";
    const stream = await streamName(values);
    if (attempt !== state.attempt) return; // stopped, or started again, meanwhile
    const url = location.protocol + "//" + location.host + "/hls/" + encodeURIComponent(stream) + "/index.m3u8";
    const video = $("video");
    const note = $("hls-note");
    note.hidden = false;
    if (video.canPlayType("application/vnd.apple.mpegurl")) {
      note.textContent = "HLS: " + url;
      video.src = url;
      video.play().catch((error) => toast("cannot play HLS: " + error.message, "error"));
      setBadge("connected", "HLS");
    } else {
      note.textContent = "This browser has no built-in HLS: use MSE here, or open " + url + " in VLC, ffplay or a phone.";
      setBadge("disconnected", "no HLS in this browser");
    }
  }

  // The first stream the server has: the default /ws serves, and HLS names.
  // By origin: a page opened as http://user:password@host/viewer has its credentials in its base URL, which
  // fetch refuses for a relative URL.
  state.statsLoaded = fetch(location.origin + "/api/stats", { cache: "no-store" }).then((r) => r.json()).then((report) => {
    state.defaultStream = (report.streams || [])[0]?.name;
    for (const stream of report.streams || []) state.codecs[stream.name] = stream.codecs || "";
  }).catch(() => {});

  $("stop").addEventListener("click", () => {
    if (state.transport === "hls") { $("video").removeAttribute("src"); $("video").load(); }
    if (state.player) state.player.stop();
    state.player = null;
    state.attempt += 1;
    $("start").disabled = false;
    $("stop").disabled = true;
  });

  // Leaving the page ends a WebRTC session at once (DELETE), rather than after camflow's 30 s without checks.
  window.addEventListener("pagehide", () => { if (state.player) state.player.stop(); });

  if (params.get("autostart") === "1") $("start").click();
})();
