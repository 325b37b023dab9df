#!/usr/bin/python3
"""Checks the dashboard's RTSP clients table in headless Chromium.

  dashboard_check.py DASHBOARD_URL --clients N --stop FILE [--timeout S] [--screenshot FILE]

Waits until the table shows N clients that were sent bytes, creates FILE
(the test's RTSP clients leave when it exists), then waits until the table
is gone and the page says "no RTSP clients". Also runs the page's own
Prometheus reader (window.camflowPrometheus) on text with escapes, commas
and markup in label values. Prints one JSON object; the Swift test decides
what passes.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from browser_check import Chromium  # noqa: E402

TABLE = """(() => {
  const dashboard = window.camflowDashboard;
  if (!dashboard || !window.camflowPrometheus) return null;
  const section = document.getElementById('rtsp');
  const table = document.getElementById('rtsp-clients');
  const rows = [...table.querySelectorAll('tr')].map((tr) => [...tr.children].map((cell) => cell.textContent));
  // Shown as the browser lays it out (a stylesheet could override the hidden attribute).
  const shown = (element) => getComputedStyle(element).display !== 'none' && element.getClientRects().length > 0;
  return { rtspReports: dashboard.rtspReports, sectionShown: shown(section), tableShown: shown(table),
           noneShown: shown(document.getElementById('rtsp-none')),
           noneText: document.getElementById('rtsp-none').textContent, header: rows[0] || [], rows: rows.slice(1),
           clients: dashboard.rtspClients,
           // Anything but text inside a cell would mean a value reached the page as markup.
           elementsInCells: table.querySelectorAll('td *, th *').length };
})()"""

# Escaped quote, backslash and line feed, a comma and braces inside a value, a trailing comma,
# a __proto__ label, +Inf, a line of another family, a comment and a broken line.
PARSER = r"""(() => {
  const text = [
    '# HELP camflow_rtsp_client_bytes_sent_total bytes',
    'camflow_rtsp_client_bytes_sent_total{node="rtsp",stream="a\\"b<img src=x>",client="[::1]:554",transport="udp",} 3145728',
    'camflow_rtsp_client_gops_dropped_total{node="rtsp",stream="a\\"b<img src=x>",client="[::1]:554",transport="udp"} 2',
    'camflow_rtsp_client_queue_bytes{__proto__="p",stream="s,}{=\\\\ \\n",client="c"} +Inf',
    'camflow_rtsp_clients{node="rtsp",stream="cam1"} 1.0',
    'camflow_rtsp_client_packets_sent_total{broken="x} 5',
    'camflow_other_total 7',
  ].join('\n');
  const P = window.camflowPrometheus;
  const samples = P.parse(text, 'camflow_rtsp_');
  return { samples: samples.map((s) => ({ name: s.name, labels: Object.entries(s.labels),
                                          value: s.value === Infinity ? 'Inf' : s.value })),
           clients: P.rtspClients(samples).map((c) => ({ stream: c.stream, client: c.client, transport: c.transport,
                                                         bytes: c.bytes, gops: c.gops })) };
})()"""


def wait(chromium, deadline, done):
    state = None
    while time.monotonic() < deadline:
        state = chromium.evaluate(TABLE)
        if state and done(state):
            return state, True
        chromium.read(time.monotonic() + 0.2)  # collects events while waiting
    return state or {}, False


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--stop", required=True)
    parser.add_argument("--timeout", type=float, default=15)
    parser.add_argument("--screenshot")
    args = parser.parse_args()
    chromium = Chromium()
    try:
        chromium.open(args.url)
        deadline = time.monotonic() + args.timeout

        def playing(state):
            return len(state["rows"]) >= args.clients and all(c["bytes"] > 0 for c in state["clients"])

        during, seen = wait(chromium, deadline, playing)
        if args.screenshot:
            chromium.screenshot(args.screenshot)
        with open(args.stop, "w"):
            pass
        after, gone = wait(chromium, time.monotonic() + args.timeout,
                           lambda state: not state["tableShown"] and state["noneShown"])
        print(json.dumps({"during": during, "seen": seen, "after": after, "gone": gone,
                          "parser": chromium.evaluate(PARSER), "consoleErrors": chromium.console_errors()}))
    finally:
        chromium.close()


if __name__ == "__main__":
    main()
