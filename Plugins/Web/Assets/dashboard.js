// The dashboard: a live tile per stream and the pipeline graph with rates,
// queue fill and drops, refreshed every second from /api/stats.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const state = { history: [], tiles: new Map(), reports: 0, errors: [] };
  window.camflowDashboard = state;

  const human = (n) => n >= 1e9 ? (n / 1e9).toFixed(1) + "G" : n >= 1e6 ? (n / 1e6).toFixed(1) + "M"
    : n >= 1e3 ? (n / 1e3).toFixed(1) + "k" : n.toFixed(n < 10 && n % 1 ? 1 : 0);
  const bits = (bytesPerSecond) => human(bytesPerSecond * 8) + "bit/s";

  function element(name, attributes, parent, text) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function rate(now, before, key, seconds) {
    if (!before || seconds <= 0) return 0;
    return Math.max(0, (now[key] - before[key]) / seconds);
  }

  // --- tiles ---------------------------------------------------------------

  function tile(stream) {
    let entry = state.tiles.get(stream.name);
    if (!entry) {
      const root = document.createElement("article");
      root.className = "tile";
      root.dataset.stream = stream.name;
      root.innerHTML = '<h2></h2><video muted playsinline></video><dl></dl>'
        + '<p class="links"><a class="snapshot">snapshot</a> · <a class="hls">HLS</a> · <a href="/recordings">recordings</a></p>';
      root.querySelector("h2").textContent = stream.name;
      root.querySelector("a.snapshot").href = "/snapshot/" + encodeURIComponent(stream.name) + ".jpg";
      root.querySelector("a.hls").href = "/hls/" + encodeURIComponent(stream.name) + "/index.m3u8";
      $("tiles").appendChild(root);
      const base = (location.protocol === "https:" ? "wss://" : "ws://") + location.host;
      const player = new CamflowPlayer(root.querySelector("video"), {
        url: base + "/ws/" + encodeURIComponent(stream.name),
        onError: (text) => state.errors.push(stream.name + ": " + text),
      });
      player.start();
      entry = { root, player };
      state.tiles.set(stream.name, entry);
    }
    return entry;
  }

  function renderTiles(report, seconds, before) {
    for (const stream of report.streams) {
      const { root, player } = tile(stream);
      const previous = before && before.streams.find((s) => s.name === stream.name);
      const rows = [
        ["codecs", stream.codecs || "?"],
        ["picture", stream.width ? stream.width + "×" + stream.height : "?"],
        ["bitrate", bits(rate(stream, previous, "bytes", seconds))],
        ["fragments/s", rate(stream, previous, "fragments", seconds).toFixed(1)],
        ["media", stream.mediaSeconds.toFixed(0) + " s, " + stream.gops + " GOPs"],
        ["viewers", stream.viewers + " (dropped " + stream.droppedFragments + " fragments)"],
        ["player", player.state + ", " + player.playedSeconds().toFixed(1) + " s played"],
      ];
      const dl = root.querySelector("dl");
      dl.replaceChildren(...rows.flatMap(([k, v]) => {
        const dt = document.createElement("dt"); dt.textContent = k;
        const dd = document.createElement("dd"); dd.textContent = v;
        return [dt, dd];
      }));
    }
  }

  // --- graph ---------------------------------------------------------------

  function layers(nodes) {
    const byId = new Map(nodes.map((n) => [n.id, n]));
    const depth = new Map();
    const visit = (node, seen) => {
      if (depth.has(node.id)) return depth.get(node.id);
      if (seen.has(node.id)) return 0;
      seen.add(node.id);
      const d = node.inputs.length ? 1 + Math.max(...node.inputs.map((i) => visit(byId.get(i), seen))) : 0;
      depth.set(node.id, d);
      return d;
    };
    nodes.forEach((n) => visit(n, new Set()));
    return depth;
  }

  function renderGraph(report, seconds, before) {
    const svg = $("graph");
    svg.replaceChildren();
    const depth = layers(report.nodes);
    const W = 170, H = 70, GX = 84, GY = 26, BAND_GAP = 34;
    // Layers that do not fit the page's width wrap into bands below each
    // other, so a long chain of nodes never needs horizontal scrolling.
    const available = Math.max(W, (svg.parentElement.clientWidth || 1200) - 24);
    const perBand = Math.max(1, Math.floor((available - 20 + GX) / (W + GX)));
    const rowsIn = new Map();
    for (const node of report.nodes) {
      const d = depth.get(node.id);
      rowsIn.set(d, (rowsIn.get(d) || 0) + 1);
    }
    const layerCount = Math.max(...rowsIn.keys()) + 1;
    const bandTop = [10];
    for (let band = 0; band * perBand < layerCount; band++) {
      let rows = 0;
      for (let d = band * perBand; d < Math.min(layerCount, (band + 1) * perBand); d++) rows = Math.max(rows, rowsIn.get(d) || 0);
      bandTop.push(bandTop[band] + rows * (H + GY) - GY + BAND_GAP);
    }
    const position = new Map();
    const placed = new Map();
    for (const node of report.nodes) {
      const d = depth.get(node.id);
      const row = placed.get(d) || 0;
      placed.set(d, row + 1);
      const band = Math.floor(d / perBand), column = d % perBand;
      position.set(node.id, { x: 10 + column * (W + GX), y: bandTop[band] + row * (H + GY) });
    }
    const width = 20 + Math.min(layerCount, perBand) * (W + GX) - GX;
    const height = bandTop[bandTop.length - 1] - BAND_GAP + 10;
    svg.setAttribute("width", Math.min(width, available));
    svg.setAttribute("height", Math.min(width, available) / width * height);
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);

    for (const edge of report.edges) {
      const a = position.get(edge.from), b = position.get(edge.to);
      if (!a || !b) continue;
      const previous = before && before.edges.find((e) => e.from === edge.from && e.to === edge.to);
      const fill = edge.capacity ? edge.depth / edge.capacity : 0;
      const blocked = previous ? edge.blockedSeconds - previous.blockedSeconds : 0;
      const g = element("g", { class: "edge" + (fill >= 0.9 || blocked > seconds * 0.5 ? " full" : fill >= 0.5 ? " busy" : ""),
                               "data-from": edge.from, "data-to": edge.to }, svg);
      let mx, my;
      if (b.x > a.x) {
        const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
        element("path", { d: `M${x1},${y1} C${x1 + GX / 2},${y1} ${x2 - GX / 2},${y2} ${x2},${y2}` }, g);
        mx = (x1 + x2) / 2; my = (y1 + y2) / 2;
      } else {
        // Into the next band: from the node's bottom to the next one's top.
        const x1 = a.x + W / 2, y1 = a.y + H, x2 = b.x + W / 2, y2 = b.y;
        element("path", { d: `M${x1},${y1} C${x1},${y1 + BAND_GAP} ${x2},${y2 - BAND_GAP} ${x2},${y2}` }, g);
        mx = (x1 + x2) / 2; my = (y1 + y2) / 2;
      }
      element("text", { x: mx - 36, y: my - 8 }, g, human(rate(edge, previous, "packets", seconds)) + " pkt/s");
      element("rect", { class: "fill-bg", x: mx - 36, y: my - 2, width: 72, height: 7 }, g);
      element("rect", { class: "fill", x: mx - 36, y: my - 2, width: Math.max(1, 72 * fill), height: 7 }, g);
      element("text", { x: mx - 36, y: my + 18 }, g, edge.depth + "/" + edge.capacity
        + (blocked > 0.01 ? " blocked " + Math.round(100 * blocked / seconds) + "%" : ""));
    }

    for (const node of report.nodes) {
      const p = position.get(node.id);
      const previous = before && before.nodes.find((n) => n.id === node.id);
      const down = !node.running || node.connected === false;
      const g = element("g", { class: "node " + node.role + (down ? " down" : ""), "data-id": node.id,
                               transform: `translate(${p.x},${p.y})` }, svg);
      element("rect", { width: W, height: H }, g);
      element("text", { x: 10, y: 18 }, g, node.id);
      element("text", { x: 10, y: 34, class: "small" }, g, node.type + (node.connected === false ? " · not connected" : ""));
      const inRate = rate(node, previous, "packetsIn", seconds), outRate = rate(node, previous, "packetsOut", seconds);
      const bytesRate = rate(node, previous, node.role === "sink" ? "bytesIn" : "bytesOut", seconds);
      element("text", { x: 10, y: 50, class: "small" }, g,
        (node.role === "source" ? "" : "in " + human(inRate) + "/s  ") + (node.role === "sink" ? "" : "out " + human(outRate) + "/s  ")
        + bits(bytesRate));
      if (node.dropped > 0 || node.restarts > 0) {
        element("text", { x: 10, y: 64, class: "drops" }, g,
          (node.dropped ? "dropped " + node.dropped : "") + (node.restarts ? "  restarts " + node.restarts : ""));
      }
    }
  }

  function renderViewers(report) {
    const rows = [["viewer", "stream", "from", "sent", "dropped", "GOPs lost", "queued"]].concat(
      report.viewers.map((v) => ["#" + v.id, v.stream || "", v.remote, v.sentFragments, v.droppedFragments, v.droppedGOPs,
                                 human(v.queuedBytes) + "B"]));
    $("viewers").replaceChildren(...rows.map((cells, i) => {
      const tr = document.createElement("tr");
      for (const cell of cells) {
        const td = document.createElement(i === 0 ? "th" : "td");
        td.textContent = cell;
        tr.appendChild(td);
      }
      return tr;
    }));
  }

  async function refresh() {
    try {
      const response = await fetch("/api/stats", { cache: "no-store" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const report = await response.json();
      // Rates over the last few seconds: a camera sends a fragment every second
      // or two, so one-second differences would flicker between 0 and double.
      const before = state.history.find((r) => report.uptimeSeconds - r.uptimeSeconds <= 5.5) || null;
      const seconds = before ? report.uptimeSeconds - before.uptimeSeconds : 0;
      $("pipeline-name").textContent = report.pipeline;
      $("uptime").textContent = "up " + Math.round(report.uptimeSeconds) + " s";
      const ready = $("ready");
      ready.className = "badge " + (report.ready ? "ready" : "not-ready");
      ready.textContent = report.ready ? "ready" : "waiting for " + report.notReady.join(", ");
      renderTiles(report, seconds, before);
      renderGraph(report, seconds, before);
      renderViewers(report);
      $("error").textContent = "";
      state.history.push(report);
      if (state.history.length > 6) state.history.shift();
      state.reports += 1;
    } catch (e) {
      $("error").textContent = "cannot read /api/stats: " + e.message;
    }
  }

  refresh();
  setInterval(refresh, 1000);
})();
