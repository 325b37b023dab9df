#!/usr/bin/env python3
"""Reads camflow's LL-HLS as clients do, for the end-to-end tests.

  hls_check.py URL_OF_INDEX_M3U8 [--blocking N]

Parses the playlist with the m3u8 package (PyPI), then makes N blocking
playlist reloads in a row, each for the part after the newest one
(_HLS_msn/_HLS_part), and times them. Prints one JSON object; the Swift
test decides what passes."""
import argparse
import json
import time
import urllib.request

import m3u8


def fetch(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read().decode()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--blocking", type=int, default=6)
    args = parser.parse_args()
    playlist = m3u8.loads(fetch(args.url), uri=args.url)
    segments = playlist.segments
    result = {
        "version": playlist.version,
        "targetDuration": playlist.target_duration,
        "mediaSequence": playlist.media_sequence,
        "independentSegments": playlist.is_independent_segments,
        "partTarget": playlist.part_inf.part_target if playlist.part_inf else None,
        "canBlockReload": bool(playlist.server_control and playlist.server_control.can_block_reload == "YES"),
        "partHoldBack": playlist.server_control.part_hold_back if playlist.server_control else None,
        "preloadHint": playlist.preload_hint.uri if playlist.preload_hint else None,
        "map": segments[0].init_section.uri if segments and segments[0].init_section else None,
        "segments": [{"uri": s.uri, "duration": s.duration, "parts": len(s.parts),
                      "firstPartIndependent": bool(s.parts and s.parts[0].independent == "YES")} for s in segments],
        "partDurations": [p.duration for s in segments for p in s.parts],
    }
    waits = []
    current = playlist
    for _ in range(args.blocking):
        last = current.segments[-1]
        msn = current.media_sequence + len(current.segments) - 1
        # The next part: after the last listed part of the newest segment.
        wanted = (msn, len(last.parts)) if last.uri is None else (msn + 1, 0)
        started = time.monotonic()
        text = fetch(f"{args.url}?_HLS_msn={wanted[0]}&_HLS_part={wanted[1]}")
        waited = time.monotonic() - started
        waits.append({"msn": wanted[0], "part": wanted[1], "seconds": waited,
                      "listed": f'URI="part-{wanted[0]}.{wanted[1]}.m4s"' in text or f"segment-{wanted[0]}.m4s" in text})
        current = m3u8.loads(text)
    result["blocking"] = waits
    print(json.dumps(result))


if __name__ == "__main__":
    main()
