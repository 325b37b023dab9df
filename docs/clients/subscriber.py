#!/usr/bin/env python3
"""Subscribe to a camflow stream over ZeroMQ and write its H.264 video as an
Annex B file that ffmpeg, ffplay or any decoder reads.

camflow publishes three-frame messages: topic (`cam1/frame`), a JSON header
(stream, kind, sequence, codec, timescale, dts, pts, duration, keyframe,
width, height, track, track_kind, received_at_ns) and the payload. Frames are as stored
in MP4 (length-prefixed NAL units) unless the pipeline set `annexb: true`;
the parameter sets come from the init segment (`cam1/init`), which a
latching publisher re-sends to every new subscriber.

    python3 subscriber.py --endpoint tcp://127.0.0.1:5555 --stream cam1 --out cam1.h264
    ffplay cam1.h264
"""
import argparse
import json
import struct
import sys
import time
from collections import Counter

import zmq


def avc_config(init):
    """NAL length size, SPS list and PPS list from the init segment's avcC box."""
    at = init.find(b"avcC")
    if at < 4:
        return None
    size = struct.unpack(">I", init[at - 4:at])[0]
    box = init[at + 4:at - 4 + size]
    length_size = (box[4] & 3) + 1
    sets, pos = [[], []], 5
    for kind in range(2):
        count = box[pos] & (0x1F if kind == 0 else 0xFF)
        pos += 1
        for _ in range(count):
            n = struct.unpack(">H", box[pos:pos + 2])[0]
            sets[kind].append(box[pos + 2:pos + 2 + n])
            pos += 2 + n
    return length_size, sets[0], sets[1]


def annex_b(sample, config, keyframe):
    """Length-prefixed NAL units to start codes, parameter sets before a keyframe."""
    length_size, sps, pps = config
    out = bytearray()
    if keyframe:
        for unit in sps + pps:
            out += b"\0\0\0\1" + unit
    pos = 0
    while pos + length_size <= len(sample):
        n = int.from_bytes(sample[pos:pos + length_size], "big")
        out += b"\0\0\0\1" + sample[pos + length_size:pos + length_size + n]
        pos += length_size + n
    return bytes(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True, help="publisher or broker backend, e.g. tcp://127.0.0.1:5555")
    parser.add_argument("--stream", default="cam1", help="stream name (the topic prefix)")
    parser.add_argument("--out", required=True, help="H.264 Annex B file to write")
    parser.add_argument("--frames", type=int, default=0, help="stop after this many video frames (0: never)")
    parser.add_argument("--idle-timeout", type=float, default=10, help="stop after this many seconds without a message")
    args = parser.parse_args()

    socket = zmq.Context.instance().socket(zmq.SUB)
    socket.connect(args.endpoint)
    for kind in ("init", "frame"):
        socket.setsockopt_string(zmq.SUBSCRIBE, f"{args.stream}/{kind}")

    counts, config, started, written = Counter(), None, False, 0
    with open(args.out, "wb") as out:
        while True:
            if not socket.poll(int(args.idle_timeout * 1000)):
                break
            parts = socket.recv_multipart()
            if len(parts) != 3:
                counts["malformed"] += 1
                continue
            topic, header, payload = parts[0].decode(), json.loads(parts[1]), parts[2]
            counts[topic] += 1
            codec = header.get("codec") or ""
            if header["kind"] == "init":
                config = avc_config(payload) or config
            elif header["kind"] == "frame" and codec.startswith(("avc1", "avc3")) and config:
                keyframe = bool(header.get("keyframe"))
                if not started and not keyframe:
                    continue  # a decoder starts at a keyframe
                started = True
                # camflow's Annex B always uses 4-byte start codes; a length
                # prefix of 1 is no real NAL unit, so this cannot be confused.
                is_annex_b = payload.startswith(b"\0\0\0\1")
                out.write(payload if is_annex_b else annex_b(payload, config, keyframe))
                written += 1
                if args.frames and written >= args.frames:
                    break
    for topic, count in sorted(counts.items()):
        print(f"{topic} {count}")
    print(f"video-frames-written {written}")
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())
