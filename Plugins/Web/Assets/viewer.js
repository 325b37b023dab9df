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

  const state = { player: null, messages: 0, errors: [] };
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

  $("connection").addEventListener("submit", (event) => {
    event.preventDefault();
    if (state.player) state.player.stop();
    const values = Object.fromEntries(fields.map((name) => [name, $(name).value.trim()]));
    localStorage.setItem("camflow-viewer", JSON.stringify(values));
    if (values.mode === "hls") { playHLS(values); return; }
    $("hls-note").hidden = true;
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
    $("start").disabled = true;
    $("stop").disabled = false;
  });

  // HLS plays natively where the browser has it (Safari, iOS, Android, some
  // TVs); elsewhere the page says so and gives the URL for VLC or ffplay.
  function playHLS(values) {
    const named = values.endpoint.replace(/^\/ws\/?/, "");
    let stream = state.defaultStream || "";
    try { stream = named ? decodeURIComponent(named) : stream; } catch { stream = named; } // the endpoint is already URL-encoded
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
    $("start").disabled = true;
    $("stop").disabled = false;
  }

  // The first stream the server has: the default /ws serves, and HLS names.
  fetch("/api/stats", { cache: "no-store" }).then((r) => r.json()).then((report) => {
    state.defaultStream = (report.streams || [])[0]?.name;
  }).catch(() => {});

  $("stop").addEventListener("click", () => {
    if ($("mode").value === "hls") { $("video").removeAttribute("src"); $("video").load(); }
    if (state.player) state.player.stop();
    $("start").disabled = false;
    $("stop").disabled = true;
  });

  if (params.get("autostart") === "1") $("start").click();
})();
