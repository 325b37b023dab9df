#!/usr/bin/env python3
"""Writes seed inputs for the fuzz targets (make fuzz) into .build-fuzz/seeds:
small streams built from the fixtures' init segments and tiny crafted
fragments, and typical ZeroMQ headers. `make fuzz` merges what the fuzzer
finds into the checked-in, minimised corpus under Fuzz/corpus/."""
import importlib.util
import json
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
spec = importlib.util.spec_from_file_location("hostile", os.path.join(ROOT, "scripts", "make-hostile.py"))
hostile = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hostile)

OUT = os.path.join(ROOT, ".build-fuzz", "seeds")
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures")


def write(kind, name, data):
    os.makedirs(os.path.join(OUT, kind), exist_ok=True)
    with open(os.path.join(OUT, kind, name), "wb") as out:
        out.write(data)


def init_of(name):
    boxes = hostile.top_level_boxes(open(os.path.join(FIXTURES, name), "rb").read())
    return b"".join(data for kind, data in boxes if kind in (b"ftyp", b"moov"))


def main():
    # Two 32-byte H.264 samples: a 4-byte length, then an IDR (0x65) or a slice (0x41).
    nal = lambda kind: struct.pack(">I", 28) + bytes([kind]) + b"\x88" * 27
    samples = struct.pack(">III", 512, 32, 0x02000000) + struct.pack(">III", 512, 32, 0x01010000)
    small = hostile.fragment(tfdt=0, truns=[(0, 0x701, 2, samples)], mdat=nal(0x65) + nal(0x41))
    prefixes = {"1": b"\x00\x00", "257": b"\x01\x00", "whole": b"\xff\xff"}
    for fixture in sorted(os.listdir(FIXTURES)):
        if not fixture.endswith(".mp4"):
            continue
        stream = init_of(fixture) + small
        for label, prefix in prefixes.items():
            write("mp4", f"{fixture[:-4]}-chunk-{label}", prefix + stream)
    for case in json.load(open(os.path.join(FIXTURES, "hostile", "cases.json"))):
        data = open(os.path.join(FIXTURES, "hostile", case["file"]), "rb").read()
        write("mp4", "hostile-" + case["file"][:-4], b"\x00\x40" + data[:4096])
    headers = [
        {"stream": "cam1", "kind": "frame", "sequence": 42, "codec": "avc1.4D0033", "timescale": 90000, "dts": 1000,
         "pts": 4000, "duration": 3600, "keyframe": True, "width": 2560, "height": 1440, "track": 1,
         "discontinuity": True, "received_at_ns": 7},
        {"stream": "cam1", "kind": "init", "sequence": 0, "codec": "avc1.4D0033, mp4a.40.2", "timescale": 90000},
        {"stream": "cam1", "kind": "event", "sequence": 3, "event": "stats",
         "fields": {"fps": 25.5, "frames": 50, "codec": "mp4a.40.2", "ok": True}},
        {"stream": "cam1", "kind": "fragment", "sequence": 9, "dts": -5, "duration": 0},
    ]
    for index, header in enumerate(headers):
        write("header", f"header-{index}", json.dumps(header, separators=(",", ":")).encode())
    print(f"wrote seeds to {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
