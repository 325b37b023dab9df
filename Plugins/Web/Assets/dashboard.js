// The dashboard: a live tile per stream and the pipeline graph with rates,
// queue fill and drops, refreshed every second from /api/stats; the RTSP
// clients from the rtsp node's series in /metrics.
"use strict";

// The pipeline graph's layout, a pure function of the graph and the width
// (window.camflowGraphLayout, tested on its own): nodes in layers by their
// longest path from a source, an edge that spans several layers passing
// through a free slot (a dummy) in each layer between, the order within
// each layer by the barycentre of the neighbours (fewer crossings), layers
// that do not fit the width wrapped into bands. Every edge is a polyline
// of horizontal and vertical segments that runs only through the gaps
// between columns, the free slots and the margins and gaps between bands:
// it never crosses a node's box.
const LAYOUT = { W: 170, H: 70, GX: 84, GY: 26, SLOT: 16, BAND_GAP: 40, MARGIN: 18 };

window.camflowGraphLayout = (nodes, edges, available) => {
  const { W, H, GX, GY, SLOT, BAND_GAP, MARGIN } = LAYOUT;
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const depth = new Map();
  const visit = (id, seen) => {
    if (depth.has(id)) return depth.get(id);
    const node = byId.get(id);
    if (!node || seen.has(id)) return 0;
    seen.add(id);
    const inputs = (node.inputs || []).filter((i) => byId.has(i));
    const d = inputs.length ? 1 + Math.max(...inputs.map((i) => visit(i, seen))) : 0;
    depth.set(id, d);
    return d;
  };
  nodes.forEach((n) => visit(n.id, new Set()));
  const layerCount = nodes.length ? Math.max(...depth.values()) + 1 : 1;

  // Items per layer: nodes, and a dummy for each layer an edge passes over.
  const layers = Array.from({ length: layerCount }, () => []);
  const items = new Map();
  for (const node of nodes) {
    const item = { key: node.id, layer: depth.get(node.id), dummy: false, up: [], down: [] };
    items.set(node.id, item);
    layers[item.layer].push(item);
  }
  const chains = [];
  for (const edge of edges) {
    const from = items.get(edge.from), to = items.get(edge.to);
    if (!from || !to) continue;
    const chain = [from];
    if (to.layer > from.layer) {
      for (let layer = from.layer + 1; layer < to.layer; layer++) {
        const dummy = { key: edge.from + "→" + edge.to + "#" + layer, layer, dummy: true, up: [], down: [] };
        layers[layer].push(dummy);
        chain.push(dummy);
      }
    }
    chain.push(to);
    for (let i = 1; i < chain.length; i++) {
      chain[i - 1].down.push(chain[i]);
      chain[i].up.push(chain[i - 1]);
    }
    chains.push({ edge, chain });
  }

  // Barycentre ordering, sweeping down and up a few times.
  const index = () => layers.forEach((layer) => layer.forEach((item, i) => { item.order = i; }));
  index();
  const mean = (list, fallback) => list.length ? list.reduce((sum, other) => sum + other.order, 0) / list.length : fallback;
  for (let sweep = 0; sweep < 6; sweep++) {
    const down = sweep % 2 === 0;
    const order = down ? layers.slice(1) : layers.slice(0, -1).reverse();
    for (const layer of order) {
      const keyed = layer.map((item) => ({ item, key: mean(down ? item.up : item.down, item.order) }));
      keyed.sort((a, b) => a.key - b.key || a.item.order - b.item.order);
      layer.splice(0, layer.length, ...keyed.map((k) => k.item));
      layer.forEach((item, i) => { item.order = i; });
    }
  }

  // Coordinates: columns across, bands of columns down the page.
  const perBand = Math.max(1, Math.floor((available - 2 * MARGIN + GX) / (W + GX)));
  // Boxes keep GY apart; a free slot needs only a few pixels from its neighbour.
  const gap = (a, b) => a.dummy || b.dummy ? 6 : GY;
  const stack = (layer) => layer.reduce((h, item, i) => h + (item.dummy ? SLOT : H) + (i ? gap(layer[i - 1], item) : 0), 0);
  const bandTop = [MARGIN];
  const bandCount = Math.ceil(layerCount / perBand);
  for (let band = 0; band < bandCount; band++) {
    let tallest = 0;
    for (let d = band * perBand; d < Math.min(layerCount, (band + 1) * perBand); d++) tallest = Math.max(tallest, stack(layers[d]));
    bandTop.push(bandTop[band] + tallest + BAND_GAP);
  }
  for (const layer of layers) {
    const band = Math.floor(layer[0] ? layer[0].layer / perBand : 0);
    let y = bandTop[band];
    layer.forEach((item, i) => {
      if (i) y += gap(layer[i - 1], item);
      const height = item.dummy ? SLOT : H;
      item.x = MARGIN + (item.layer % perBand) * (W + GX);
      item.y = y;
      item.mid = y + height / 2;
      y += height;
    });
  }
  const width = 2 * MARGIN + Math.min(layerCount, perBand) * (W + GX) - GX;
  const height = bandTop[bandCount] - BAND_GAP + MARGIN;

  // Routes. Hops through one column gap share it in lanes; hops into the
  // next band go down the right margin, along the gap under the band and
  // down the left margin, each in a lane of its own.
  const gapLanes = new Map(), wrapLanes = new Map();
  const lane = (lanes, key) => {
    const taken = lanes.get(key) || 0;
    lanes.set(key, taken + 1);
    return taken;
  };
  const routes = [];
  for (const { edge, chain } of chains) {
    const points = [];
    let label = null;
    const from = chain[0], to = chain[chain.length - 1];
    if (to.layer <= from.layer) {
      // Against the flow (a cycle): round by the margins and the top of the graph.
      const x1 = from.x + W, x2 = to.x, top = MARGIN / 3;
      points.push([x1, from.mid], [x1 + GX / 4, from.mid], [x1 + GX / 4, top], [x2 - GX / 4, top], [x2 - GX / 4, to.mid], [x2, to.mid]);
      routes.push({ from: edge.from, to: edge.to, points, label: { x: (x1 + x2) / 2, y: top + 20 } });
      continue;
    }
    points.push([from.x + W, from.mid]);
    for (let i = 1; i < chain.length; i++) {
      const a = chain[i - 1], b = chain[i];
      const aBand = Math.floor(a.layer / perBand), bBand = Math.floor(b.layer / perBand);
      if (aBand === bBand) {
        const gapKey = a.layer;
        const n = lane(gapLanes, gapKey);
        const x = a.x + W + GX / 2 + ((n % 7) - 3) * 6;
        if (a.mid !== b.mid) points.push([x, a.mid], [x, b.mid]);
        if (!label && !b.dummy) label = { x: a.x + W + GX / 2, y: b.mid };
      } else {
        const n = lane(wrapLanes, aBand) % 5;
        const right = a.x + W + 4 + n * 3;
        const below = bandTop[aBand + 1] - BAND_GAP + 8 + n * 6;
        const left = MARGIN - 4 - n * 3;
        points.push([right, a.mid], [right, below], [left, below], [left, b.mid]);
        if (!label) label = { x: Math.min(MARGIN + 60 + n * 96, width - 40), y: below + 2 };
      }
      points.push([b.x, b.mid]);
      if (b.dummy) points.push([b.x + W, b.mid]);
    }
    routes.push({ from: edge.from, to: edge.to, points, label: label || { x: to.x - GX / 2, y: to.mid } });
  }
  const boxes = new Map(nodes.map((n) => [n.id, { x: items.get(n.id).x, y: items.get(n.id).y, w: W, h: H }]));
  return { width, height, boxes, edges: routes };
};

// A small reader of Prometheus' text format (window.camflowPrometheus, tested
// on its own): the samples whose family names start with a prefix, label
// values unescaped. Label values come from the network (an RTSP client's
// address), so the page puts them only in textContent.
window.camflowPrometheus = (() => {
  const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
  const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*/;
  const ESCAPES = { n: "\n", "\\": "\\", '"': '"' };

  // One sample line: { name, labels, value }, or null when it is not one.
  function parseLine(line) {
    const name = NAME.exec(line);
    if (!name) return null;
    let i = name[0].length;
    // No prototype: a label called __proto__ is a label like any other.
    const labels = Object.create(null);
    if (line[i] === "{") {
      i++;
      for (;;) {
        while (line[i] === " " || line[i] === ",") i++;
        if (line[i] === "}") { i++; break; }
        const key = LABEL.exec(line.slice(i));
        if (!key) return null;
        i += key[0].length;
        if (line[i] !== "=" || line[i + 1] !== '"') return null;
        i += 2;
        let value = "";
        for (;;) {
          if (i >= line.length) return null;
          const c = line[i++];
          if (c === '"') break;
          if (c === "\\" && i < line.length) {
            const e = line[i++];
            value += ESCAPES[e] !== undefined ? ESCAPES[e] : "\\" + e;
          } else {
            value += c;
          }
        }
        labels[key[0]] = value;
      }
    }
    const token = line.slice(i).trim().split(/\s+/)[0];
    const value = token === "+Inf" ? Infinity : token === "-Inf" ? -Infinity : Number(token);
    if (!token || (Number.isNaN(value) && token !== "NaN")) return null;
    return { name: name[0], labels, value };
  }

  function parse(text, prefix) {
    const samples = [];
    for (const raw of text.split("\n")) {
      const line = raw.trim();
      if (!line.startsWith(prefix)) continue;
      const sample = parseLine(line);
      if (sample) samples.push(sample);
    }
    return samples;
  }

  // The RTSP node's per-client families, one row per client series.
  const CLIENT_FIELDS = {
    camflow_rtsp_client_bytes_sent_total: "bytes",
    camflow_rtsp_client_packets_sent_total: "packets",
    camflow_rtsp_client_gops_dropped_total: "gops",
    camflow_rtsp_client_packets_dropped_total: "dropped",
    camflow_rtsp_client_queue_bytes: "queued",
    camflow_rtsp_client_connected_since_seconds: "since",
  };

  function rtspClients(samples) {
    const rows = new Map();
    for (const sample of samples) {
      const field = CLIENT_FIELDS[sample.name];
      if (!field) continue;
      const { node = "", stream = "", client = "", transport = "" } = sample.labels;
      const key = JSON.stringify([node, stream, client, transport]);
      let row = rows.get(key);
      if (!row) {
        row = { node, stream, client, transport, bytes: 0, packets: 0, gops: 0, dropped: 0, queued: 0, since: null };
        rows.set(key, row);
      }
      row[field] = sample.value;
    }
    return [...rows.values()].sort((a, b) => a.node.localeCompare(b.node) || a.stream.localeCompare(b.stream)
      || a.client.localeCompare(b.client, undefined, { numeric: true }));
  }

  return { parse, parseLine, rtspClients };
})();

(() => {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const state = { history: [], tiles: new Map(), reports: 0, errors: [], rtspClients: [], rtspReports: 0 };
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

  function renderGraph(report, seconds, before) {
    const svg = $("graph");
    svg.replaceChildren();
    const available = Math.max(LAYOUT.W + 2 * LAYOUT.MARGIN, (svg.parentElement.clientWidth || 1200) - 24);
    const layout = window.camflowGraphLayout(report.nodes, report.edges, available);
    state.layout = layout;
    svg.setAttribute("width", Math.min(layout.width, available));
    svg.setAttribute("height", Math.min(layout.width, available) / layout.width * layout.height);
    svg.setAttribute("viewBox", "0 0 " + layout.width + " " + layout.height);
    const { W, H } = LAYOUT;

    for (const route of layout.edges) {
      const edge = report.edges.find((e) => e.from === route.from && e.to === route.to);
      if (!edge) continue;
      const previous = before && before.edges.find((e) => e.from === edge.from && e.to === edge.to);
      const fill = edge.capacity ? edge.depth / edge.capacity : 0;
      const blocked = previous ? edge.blockedSeconds - previous.blockedSeconds : 0;
      const g = element("g", { class: "edge" + (fill >= 0.9 || blocked > seconds * 0.5 ? " full" : fill >= 0.5 ? " busy" : ""),
                               "data-from": edge.from, "data-to": edge.to }, svg);
      element("path", { d: route.points.map(([x, y], i) => (i ? "L" : "M") + x + "," + y).join(" ") }, g);
      const { x: mx, y: my } = route.label;
      element("text", { x: mx - 36, y: my - 8 }, g, human(rate(edge, previous, "packets", seconds)) + " pkt/s");
      element("rect", { class: "fill-bg", x: mx - 36, y: my - 2, width: 72, height: 7 }, g);
      element("rect", { class: "fill", x: mx - 36, y: my - 2, width: Math.max(1, 72 * fill), height: 7 }, g);
      element("text", { x: mx - 36, y: my + 18 }, g, edge.depth + "/" + edge.capacity
        + (blocked > 0.01 ? " blocked " + Math.round(100 * blocked / seconds) + "%" : ""));
    }

    for (const node of report.nodes) {
      const p = layout.boxes.get(node.id);
      if (!p) continue;
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

  // A header row, then the rows; every cell through textContent.
  function fillTable(table, rows) {
    table.replaceChildren(...rows.map((cells, i) => {
      const tr = document.createElement("tr");
      for (const cell of cells) {
        const td = document.createElement(i === 0 ? "th" : "td");
        td.textContent = cell;
        tr.appendChild(td);
      }
      return tr;
    }));
  }

  function renderViewers(report) {
    fillTable($("viewers"), [["viewer", "stream", "from", "sent", "dropped", "GOPs lost", "queued"]].concat(
      report.viewers.map((v) => ["#" + v.id, v.stream || "", v.remote, v.sentFragments, v.droppedFragments, v.droppedGOPs,
                                 human(v.queuedBytes) + "B"])));
  }

  // --- RTSP clients (the rtsp node's series in /metrics) --------------------

  const since = (seconds) => {
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor(s % 3600 / 60) + " min";
  };

  function renderRTSPClients(clients, nowSeconds) {
    // The node column only when several rtsp nodes serve.
    const nodes = new Set(clients.map((c) => c.node)).size > 1;
    const header = ["stream", "client", "transport", "sent MiB", "GOPs dropped", "connected for"];
    fillTable($("rtsp-clients"), [nodes ? ["node"].concat(header) : header].concat(clients.map((c) => {
      const cells = [c.stream, c.client, c.transport, (c.bytes / 1048576).toFixed(1), String(c.gops),
                     c.since === null ? "?" : since(nowSeconds - c.since)];
      return nodes ? [c.node].concat(cells) : cells;
    })));
    $("rtsp-clients").hidden = clients.length === 0;
    $("rtsp-none").hidden = clients.length > 0;
    $("rtsp").hidden = false;
  }

  // The section shows only when an rtsp node reports (any camflow_rtsp_ series); /metrics is another plugin's
  // output, so a failure here hides the section and leaves the rest of the page alone.
  let rtspBusy = false;
  async function refreshRTSP() {
    if (rtspBusy) return;
    rtspBusy = true;
    try {
      const response = await fetch(location.origin + "/metrics", { cache: "no-store" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const text = await response.text();
      // The server's clock, as the connected-since times are: the browser's may be off.
      const date = Date.parse(response.headers.get("Date") || "");
      const now = (Number.isNaN(date) ? Date.now() : date) / 1000;
      const samples = window.camflowPrometheus.parse(text, "camflow_rtsp_");
      state.rtspClients = window.camflowPrometheus.rtspClients(samples);
      if (samples.length) renderRTSPClients(state.rtspClients, now); else $("rtsp").hidden = true;
      state.rtspReports += 1;
    } catch (e) {
      state.rtspClients = [];
      $("rtsp").hidden = true;
    } finally {
      rtspBusy = false;
    }
  }

  async function refresh() {
    try {
      const response = await fetch(location.origin + "/api/stats", { cache: "no-store" });
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
  refreshRTSP();
  setInterval(() => { refresh(); refreshRTSP(); }, 1000);
})();
