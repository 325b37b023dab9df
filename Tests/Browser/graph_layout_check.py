#!/usr/bin/python3
"""Checks the dashboard's graph layout in headless Chromium: no edge segment
crosses a node box other than its own ends, and no two boxes overlap.

  graph_layout_check.py DASHBOARD_URL --graphs FILE.json [--widths 800,1400] [--timeout S]

FILE.json: {"name": {"nodes": [{"id", "inputs"}], "edges": [{"from", "to"}]}}.
Each graph is laid out by the page's own window.camflowGraphLayout at each
width; the graph the page drew from /api/stats is checked too ("live").
Prints one JSON object; the Swift test decides what passes.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from browser_check import Chromium  # noqa: E402

CHECK = """((graphs, widths) => {
  const problems = (layout) => {
    const bad = [];
    const boxes = [...layout.boxes.entries()];
    for (const route of layout.edges) {
      for (let i = 1; i < route.points.length; i++) {
        const [x1, y1] = route.points[i - 1], [x2, y2] = route.points[i];
        for (const [id, b] of boxes) {
          if (id === route.from || id === route.to) continue;
          // Liang-Barsky against the box less half a pixel: touching a border is not crossing.
          const left = b.x + 0.5, right = b.x + b.w - 0.5, top = b.y + 0.5, bottom = b.y + b.h - 0.5;
          let t0 = 0, t1 = 1;
          const dx = x2 - x1, dy = y2 - y1;
          const clip = (p, q) => {
            if (p === 0) return q >= 0;
            const r = q / p;
            if (p < 0) { if (r > t1) return false; if (r > t0) t0 = r; } else { if (r < t0) return false; if (r < t1) t1 = r; }
            return true;
          };
          if (clip(-dx, x1 - left) && clip(dx, right - x1) && clip(-dy, y1 - top) && clip(dy, bottom - y1) && t0 <= t1) {
            bad.push(route.from + "->" + route.to + " segment " + i + " crosses " + id);
          }
        }
      }
    }
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
      const [a, p] = boxes[i], [b, q] = boxes[j];
      if (p.x < q.x + q.w && q.x < p.x + p.w && p.y < q.y + q.h && q.y < p.y + p.h) bad.push(a + " overlaps " + b);
    }
    return bad;
  };
  const summary = (layout, width) => ({ width, layoutWidth: layout.width, boxes: layout.boxes.size,
    edges: layout.edges.length, segments: layout.edges.reduce((n, e) => n + e.points.length - 1, 0), problems: problems(layout) });
  const dashboard = window.camflowDashboard;
  if (!dashboard || !dashboard.layout || !window.camflowGraphLayout) return null;
  const results = { live: summary(dashboard.layout, null), graphs: {} };
  for (const [name, graph] of Object.entries(graphs)) {
    results.graphs[name] = widths.map((width) => summary(window.camflowGraphLayout(graph.nodes, graph.edges, width), width));
  }
  return results;
})"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--graphs", required=True)
    parser.add_argument("--widths", default="800,1280,1400,2400")
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args()
    with open(args.graphs) as file:
        graphs = json.load(file)
    widths = [int(w) for w in args.widths.split(",")]
    chromium = Chromium()
    try:
        chromium.open(args.url)
        deadline = time.monotonic() + args.timeout
        result = None
        while time.monotonic() < deadline and result is None:
            result = chromium.evaluate(CHECK + "(" + json.dumps(graphs) + "," + json.dumps(widths) + ")")
            if result is None:
                chromium.read(time.monotonic() + 0.25)
        result = result or {"error": "the dashboard drew no graph within the timeout"}
        result["consoleErrors"] = chromium.console_errors()
        print(json.dumps(result))
    finally:
        chromium.close()


if __name__ == "__main__":
    main()
