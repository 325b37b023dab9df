#!/usr/bin/env python3
"""Print each camera's statistics as camflow publishes them (the stats node's events).

    python print_stats.py tcp://127.0.0.1:5555
"""
import sys

from camflow_client import Stats, Subscriber
from camflow_client.messages import printable  # text from the wire, escaped: no terminal escapes

with Subscriber(sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:5555", kinds=["stats"]) as subscriber:
    for message in subscriber:
        if isinstance(message, Stats):
            fields = message.fields
            print(printable(f"{message.stream}: {fields.get('fps')} fps, {fields.get('bitrate-bps')} bit/s, "
                            f"keyframe every {fields.get('gop-seconds')} s", None)
                  + (f"  ({message.gap} lost)" if message.gap else ""))
