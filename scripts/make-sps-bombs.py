#!/usr/bin/env python3
"""Writes Tests/Fixtures/sps-bombs/: small fragmented MP4 streams whose
sequence parameter set declares a 16000x16000 picture (1000x1000
macroblocks) while the frames are 64x64. A decoder that believes the SPS
allocates and conceals a 256-megapixel picture per frame: a few kilobytes
that cost gigabytes and seconds to decode. The snapshot service must refuse
them before ffmpeg runs.

Each stream is one second of a 64x64 test picture (25 frames, one
keyframe), encoded by libx264 or libx265, with only the width and height of
its SPS rewritten and the boxes above it resized.

    scripts/make-sps-bombs.py        # rewrites the folder (needs ffmpeg with libx264 and libx265)
"""
import os
import struct
import subprocess
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "Tests", "Fixtures", "sps-bombs")
SIZE = 16000


def unescape(data):
    out, zeros = bytearray(), 0
    for byte in data:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        zeros = zeros + 1 if byte == 0 else 0
        out.append(byte)
    return bytes(out)


def escape(data):
    out, zeros = bytearray(), 0
    for byte in data:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


class Bits:
    def __init__(self, data):
        self.bits = "".join(f"{b:08b}" for b in data)
        self.pos = 0

    def u(self, n):
        value = int(self.bits[self.pos:self.pos + n] or "0", 2)
        self.pos += n
        return value

    def ue(self):
        zeros = 0
        while self.bits[self.pos] == "0":
            zeros += 1
            self.pos += 1
        self.pos += 1
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self):
        code = self.ue()
        return (code + 1) // 2 if code & 1 else -(code // 2)


def ue_bits(value):
    code = bin(value + 1)[2:]
    return "0" * (len(code) - 1) + code


def size_fields_h264(r):
    """Bit positions of pic_width_in_mbs_minus1 and the end of pic_height_in_map_units_minus1."""
    r.u(8)
    profile = r.u(8)
    r.u(16)
    r.ue()
    if profile in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
        chroma = r.ue()
        if chroma == 3:
            r.u(1)
        r.ue(), r.ue(), r.u(1)
        if r.u(1):
            for i in range(12 if chroma == 3 else 8):
                if r.u(1):
                    last = nxt = 8
                    for _ in range(16 if i < 6 else 64):
                        if nxt:
                            nxt = (last + r.se() + 256) % 256
                        last = last if nxt == 0 else nxt
    r.ue()
    poc = r.ue()
    if poc == 0:
        r.ue()
    elif poc == 1:
        r.u(1), r.se(), r.se()
        for _ in range(r.ue()):
            r.se()
    r.ue(), r.u(1)
    start = r.pos
    r.ue(), r.ue()
    return start, r.pos, [ue_bits(SIZE // 16 - 1), ue_bits(SIZE // 16 - 1)]


def size_fields_h265(r):
    r.u(16)
    r.u(4)
    sub_layers = r.u(3)
    r.u(1)
    r.u(96)
    flags = [(r.u(1), r.u(1)) for _ in range(sub_layers)]
    if sub_layers:
        r.u(2 * (8 - sub_layers))
    for profile, level in flags:
        r.u(88 if profile else 0)
        r.u(8 if level else 0)
    r.ue()
    if r.ue() == 3:
        r.u(1)
    start = r.pos
    r.ue(), r.ue()
    return start, r.pos, [ue_bits(SIZE), ue_bits(SIZE)]


def rewrite_sps(nal, fields):
    rbsp = unescape(nal)
    start, end, replacement = fields(Bits(rbsp))
    bits = "".join(f"{b:08b}" for b in rbsp)
    payload = bits[:bits.rindex("1")]  # without the rbsp_stop_one_bit and its alignment
    payload = payload[:start] + "".join(replacement) + payload[end:] + "1"
    payload += "0" * (-len(payload) % 8)
    return escape(bytes(int(payload[i:i + 8], 2) for i in range(0, len(payload), 8)))


def rewrite_avcc(content):
    count = content[5] & 0x1F
    out, at = bytearray(content[:6]), 6
    for _ in range(count):
        (length,) = struct.unpack_from(">H", content, at)
        sps = rewrite_sps(content[at + 2:at + 2 + length], size_fields_h264)
        out += struct.pack(">H", len(sps)) + sps
        at += 2 + length
    return bytes(out + content[at:])


def rewrite_hvcc(content):
    arrays = content[22]
    out, at = bytearray(content[:23]), 23
    for _ in range(arrays):
        kind = content[at] & 0x3F
        (count,) = struct.unpack_from(">H", content, at + 1)
        out += content[at:at + 3]
        at += 3
        for _ in range(count):
            (length,) = struct.unpack_from(">H", content, at)
            unit = content[at + 2:at + 2 + length]
            if kind == 33:
                unit = rewrite_sps(unit, size_fields_h265)
            out += struct.pack(">H", len(unit)) + unit
            at += 2 + length
    return bytes(out + content[at:])


CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}
# Sample entries: the visual sample entry's 78 bytes, then child boxes.
ENTRIES = {b"avc1", b"avc3", b"hvc1", b"hev1"}


def rewrite_boxes(data, rewriters):
    out, at = bytearray(), 0
    while at < len(data):
        size, kind = struct.unpack_from(">I4s", data, at)
        content = data[at + 8:at + size]
        if kind in CONTAINERS:
            content = rewrite_boxes(content, rewriters)
        elif kind == b"stsd":
            content = content[:8] + rewrite_boxes(content[8:], rewriters)
        elif kind in ENTRIES:
            content = content[:78] + rewrite_boxes(content[78:], rewriters)
        elif kind in rewriters:
            content = rewriters[kind](content)
        out += struct.pack(">I4s", 8 + len(content), kind) + content
        at += size
    return bytes(out)


def encode(encoder, extra):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "out.mp4")
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=25", "-t", "1",
                        "-c:v", encoder, *extra, "-g", "25", "-pix_fmt", "yuv420p",
                        "-movflags", "frag_keyframe+empty_moov+default_base_moof", path], check=True)
        with open(path, "rb") as f:
            return f.read()


def main():
    os.makedirs(OUT, exist_ok=True)
    bombs = {
        "h264-16000x16000.mp4": (encode("libx264", ["-profile:v", "baseline"]), {b"avcC": rewrite_avcc}),
        "h265-16000x16000.mp4": (encode("libx265", ["-x265-params", "log-level=error", "-tag:v", "hvc1"]),
                                 {b"hvcC": rewrite_hvcc}),
    }
    for name, (mp4, rewriters) in bombs.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(rewrite_boxes(mp4, rewriters))
        print(name)


if __name__ == "__main__":
    main()
