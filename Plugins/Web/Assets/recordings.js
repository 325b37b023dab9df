"use strict";
// The recordings page: per stream, a bar of the chosen day's recorded spans
// (from /api/recordings), gaps and event clips marked; a click plays from
// that moment (clip.mp4 cut on the server), and the range can be downloaded.
(() => {
  const $ = (id) => document.getElementById(id);
  let listing = { streams: [], recordings: [], gaps: [] };

  const pad = (n) => String(n).padStart(2, "0");
  const localDay = (date) => `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  const clock = (seconds) => new Date(seconds * 1000).toLocaleTimeString();

  function dayRange() {
    const [y, m, d] = $("day").value.split("-").map(Number);
    const from = new Date(y, m - 1, d).getTime() / 1000;
    return { from, to: from + 86400 };
  }

  async function load() {
    const { from, to } = dayRange();
    const response = await fetch(`${location.origin}/api/recordings?from=${from}&to=${to}`, { cache: "no-store" });
    if (!response.ok) { $("status").textContent = "cannot list recordings: " + response.status; return; }
    listing = await response.json();
    draw();
  }

  function draw() {
    const root = $("timelines");
    root.replaceChildren();
    const select = $("stream");
    const chosen = select.value;
    select.replaceChildren(...listing.streams.map((s) => new Option(s.name, s.name)));
    if (chosen) select.value = chosen;
    const files = listing.recordings;
    $("summary").textContent = `${files.length} file(s), ${listing.gaps.length} gap(s)`;
    for (const { name } of listing.streams) {
      const own = files.filter((f) => f.stream === name);
      if (!own.length) continue;
      // The bar spans the day's recorded time (with a margin), so a short recording is not a hairline.
      const first = Math.min(...own.map((f) => f.start)), last = Math.max(...own.map((f) => f.end));
      const margin = Math.max(5, (last - first) * 0.02);
      const from = first - margin, to = last + margin;
      const x = (t) => ((t - from) / (to - from)) * 100;
      const row = document.createElement("div");
      row.className = "timeline";
      row.dataset.stream = name;
      const heading = document.createElement("h2");
      heading.textContent = name; // a stream's name comes from the network: text, never markup
      const bar = document.createElement("div");
      bar.className = "bar";
      const ticks = document.createElement("div");
      ticks.className = "ticks";
      for (const t of [from, to]) {
        const span = document.createElement("span");
        span.textContent = clock(t);
        ticks.appendChild(span);
      }
      row.append(heading, bar, ticks);
      const mark = (cls, start, end, title) => {
        const el = document.createElement("div");
        el.className = cls;
        el.style.left = x(start) + "%";
        el.style.width = Math.max(0.4, x(end) - x(start)) + "%";
        el.title = title;
        el.dataset.start = start;
        bar.appendChild(el);
        return el;
      };
      for (const f of own.filter((f) => f.kind === "recording")) mark("span", f.start, f.end, `${clock(f.start)}–${clock(f.end)} ${f.path}`);
      for (const g of listing.gaps.filter((g) => g.stream === name)) mark("gap", g.start, g.end, `gap ${clock(g.start)}–${clock(g.end)}`);
      for (const f of own.filter((f) => f.kind === "clip")) mark("clip", f.start, f.end, `${f.reason || "event"} at ${clock(f.start)}`);
      bar.addEventListener("click", (event) => {
        const box = bar.getBoundingClientRect();
        const fraction = event.clientX ? (event.clientX - box.left) / box.width : x(first) / 100;
        choose(name, from + fraction * (to - from));
      });
      root.appendChild(row);
    }
    if (!root.children.length) {
      const empty = document.createElement("p");
      empty.className = "muted";
      empty.textContent = "No recordings on this day.";
      root.appendChild(empty);
    }
  }

  function clipURL() {
    const stream = $("stream").value;
    const start = Date.parse($("start").value) / 1000;
    const duration = Number($("duration").value) || 60;
    if (!stream || !isFinite(start)) return null;
    return `/api/recordings/${encodeURIComponent(stream)}/clip.mp4?start=${start.toFixed(3)}&duration=${duration}`;
  }

  function choose(stream, seconds) {
    $("stream").value = stream;
    $("start").value = new Date(seconds * 1000).toISOString();
    play();
  }

  function play() {
    const url = clipURL();
    if (!url) { $("status").textContent = "choose a stream and a start time"; return; }
    $("download").href = url;
    $("status").textContent = "playing " + url;
    const video = $("video");
    video.src = url;
    video.play().catch((error) => { $("status").textContent = "cannot play: " + error.message; });
  }

  $("range").addEventListener("submit", (event) => { event.preventDefault(); play(); });
  $("start").addEventListener("change", () => { const url = clipURL(); if (url) $("download").href = url; });
  $("video").addEventListener("error", () => { $("status").textContent = "no video for this range"; });
  $("day").value = localDay(new Date());
  $("day").addEventListener("change", load);
  load();
  setInterval(load, 30000);
})();
