#!/usr/bin/env python3
"""The subscriber on host C of `make multihost`: camflow_client reading the
broker, one JSON line per frame message and per decoded picture, so the
orchestrator can time the cut and the recovery.

  multihost_subscriber.py ENDPOINT --streams cam1 cam2 --decode cam1
"""
import argparse
import json
import sys
import time

from camflow_client import Frame, Init, Subscriber
from camflow_client.subscriber import StreamDecoders


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoint")
    parser.add_argument("--streams", nargs="+", required=True)
    parser.add_argument("--decode", required=True, help="the stream whose video is decoded")
    args = parser.parse_args()
    decoders = StreamDecoders(args.decode, "bgr24", False)
    out = sys.stdout
    with Subscriber(args.endpoint, streams=args.streams, kinds=["init", "frame"]) as subscriber:
        for message in subscriber:
            now = time.time()
            if isinstance(message, Frame):
                out.write(json.dumps({"t": now, "stream": message.stream, "sequence": message.sequence,
                                      "video": message.track_kind == "video", "keyframe": bool(message.keyframe),
                                      "gap": message.gap, "restarted": message.restarted}) + "\n")
            elif isinstance(message, Init):
                out.write(json.dumps({"t": now, "stream": message.stream, "init": True}) + "\n")
            for picture in decoders.take(message):
                out.write(json.dumps({"t": time.time(), "decoded": picture.stream, "keyframe": picture.keyframe,
                                      "pts": picture.pts, "size": [picture.width, picture.height]}) + "\n")
            out.flush()


if __name__ == "__main__":
    main()
