#!/usr/bin/python3
"""Plays camflow's /ws in headless Chromium with a page written for the
camera (camera_page.html: appends and plays, never seeks), and reports how
far it got.

  camera_page_check.py WS_URL --codecs 'avc1.4D4033, mp4a.40.2' [--play S] [--timeout S]

Prints one JSON object: currentTime, buffered ranges, messages, errors.
The Swift test decides what passes.
"""

import argparse
import json
import os
import pathlib
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from browser_check import Chromium  # noqa: E402

STATE = """(() => {
  const page = window.cameraPage;
  const video = document.getElementById('video');
  if (!page || !video) return null;  // not loaded yet
  return { currentTime: video.currentTime, buffered: page.buffered, messages: page.messages,
           appended: page.appended, errors: page.errors, readyState: video.readyState, loaded: true };
})()"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("ws")
    parser.add_argument("--codecs", required=True)
    parser.add_argument("--play", type=float, default=1.5)
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args()
    page = pathlib.Path(__file__).resolve().with_name("camera_page.html").as_uri()
    url = page + "?" + urllib.parse.urlencode({"ws": args.ws, "codecs": args.codecs})
    chromium = Chromium()
    try:
        chromium.open(url)
        deadline = time.monotonic() + args.timeout
        state = {}
        while time.monotonic() < deadline:
            state = chromium.evaluate(STATE) or {"errors": [], "loaded": False}
            if state.get("currentTime", 0) >= args.play or state.get("errors"):
                break
            chromium.read(time.monotonic() + 0.25)  # collects events while waiting
        state["consoleErrors"] = chromium.console_errors()
        print(json.dumps(state))
    finally:
        chromium.close()


if __name__ == "__main__":
    main()
