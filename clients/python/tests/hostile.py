"""Hostile camflow messages, made here rather than stored: an H.264 stream of any
declared picture size (its SPS, PPS and an IDR slice written bit by bit), init
segments around it, and a ZeroMQ publisher that waits for its subscriber.

Run as a script, it measures what a subscriber's process holds at its peak
(ru_maxrss) while it takes each hostile case:

    .venv/bin/python clients/python/tests/hostile.py [case ...]
"""
from __future__ import annotations

import json
import struct
import subprocess
import sys

import zmq


class Bits:
    """An RBSP written bit by bit (as a string of 0 and 1: long runs repeat cheaply)."""

    def __init__(self):
        self.text = []

    def u(self, count: int, value: int) -> "Bits":
        self.text.append(format(value, f"0{count}b") if count else "")
        return self

    def ue(self, value: int) -> "Bits":
        value += 1
        return self.u(value.bit_length() - 1, 0).u(value.bit_length(), value)

    def se(self, value: int) -> "Bits":
        return self.ue(2 * value - 1 if value > 0 else -2 * value)

    def raw(self, text: str) -> "Bits":
        self.text.append(text)
        return self

    def rbsp(self) -> bytes:
        text = "".join(self.text) + "1"
        text += "0" * (-len(text) % 8)
        data = int(text, 2).to_bytes(len(text) // 8, "big")
        if b"\0\0" not in data:
            return data
        out, zeros = bytearray(), 0
        for byte in data:  # emulation prevention
            if zeros >= 2 and byte <= 3:
                out.append(3)
                zeros = 0
            out.append(byte)
            zeros = zeros + 1 if byte == 0 else 0
        return bytes(out)


def sps(width_mbs: int, height_mbs: int) -> bytes:
    """A Baseline SPS (NAL unit with its header byte) declaring width_mbs x height_mbs macroblocks."""
    bits = Bits().u(8, 66).u(8, 0xC0).u(8, 40).ue(0).ue(0).ue(2).ue(0).u(1, 0)
    bits.ue(width_mbs - 1).ue(height_mbs - 1).u(1, 1).u(1, 1).u(1, 0).u(1, 0)
    return b"\x67" + bits.rbsp()


def delayed_sps(width_mbs: int, height_mbs: int, reorder: int = 15) -> bytes:
    """As :func:`sps`, with a VUI that tells the decoder to hold ``reorder`` pictures back (as for B-frames)."""
    bits = Bits().u(8, 66).u(8, 0xC0).u(8, 40).ue(0).ue(0).ue(2).ue(1).u(1, 0)
    bits.ue(width_mbs - 1).ue(height_mbs - 1).u(1, 1).u(1, 1).u(1, 0).u(1, 1)
    bits.u(8, 0).u(1, 1).u(1, 1).ue(0).ue(0).ue(16).ue(16).ue(reorder).ue(16)
    return b"\x67" + bits.rbsp()


def pps() -> bytes:
    return b"\x68" + Bits().ue(0).ue(0).u(1, 0).u(1, 0).ue(0).ue(0).ue(0).u(1, 0).u(2, 0).se(0).se(0).se(0) \
        .u(1, 1).u(1, 0).u(1, 0).rbsp()


def idr_slice(macroblocks: int) -> bytes:
    """An IDR I slice of grey: each macroblock Intra 16x16 DC prediction with no coefficients (8 bits)."""
    bits = Bits().ue(0).ue(7).ue(0).u(4, 0).ue(0).u(1, 0).u(1, 0).se(0).ue(1)
    return b"\x65" + bits.raw("00100111" * macroblocks).rbsp()


def annex_b(*units: bytes) -> bytes:
    return b"".join(b"\0\0\0\1" + unit for unit in units)


def keyframe(width: int, height: int) -> bytes:
    """One Annex B keyframe with in-band parameter sets declaring width x height (multiples of 16)."""
    return annex_b(sps(width // 16, height // 16), pps(), idr_slice(width // 16 * height // 16))


def box(kind: bytes, *content: bytes) -> bytes:
    body = b"".join(content)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def init_segment(width: int, height: int, padding: int = 0, parameter_set: bytes | None = None,
                 config: bytes | None = None) -> bytes:
    """ftyp + moov of one H.264 track of width x height whose avcC holds ``parameter_set`` (an SPS
    declaring width x height when None), or is ``config``; ``padding`` bytes of free box in moov."""
    avcc = struct.pack(">BBBBBB", 1, 66, 0xC0, 40, 0xFF, 0xE1)
    parameter_set = parameter_set or sps(width // 16, height // 16)
    avcc += struct.pack(">H", len(parameter_set)) + parameter_set + b"\x01" + struct.pack(">H", len(pps())) + pps()
    avcc = avcc if config is None else config
    entry = bytes(6) + struct.pack(">H", 1) + bytes(16) + struct.pack(">HH", width, height) + bytes(50)
    stsd = box(b"stsd", struct.pack(">II", 0, 1), box(b"avc1", entry, box(b"avcC", avcc)))
    empty = struct.pack(">II", 0, 0)
    trak = box(b"trak", box(b"tkhd", struct.pack(">IIIII", 3, 0, 0, 1, 0), bytes(56), struct.pack(">II", width << 16,
                                                                                                 height << 16)),
               box(b"mdia", box(b"mdhd", struct.pack(">IIIII", 0, 0, 0, 90000, 0), bytes(4)),
                   box(b"hdlr", bytes(8), b"vide", bytes(13)),
                   box(b"minf", box(b"stbl", stsd, box(b"stts", empty), box(b"stsc", empty),
                                    box(b"stsz", empty, bytes(4)), box(b"stco", empty)))))
    mvhd = box(b"mvhd", struct.pack(">IIIIIIH", 0, 0, 0, 90000, 0, 0x10000, 0x100), bytes(70), struct.pack(">I", 2))
    mvex = box(b"mvex", box(b"trex", struct.pack(">IIIIII", 0, 1, 1, 0, 0, 0)))
    free = box(b"free", bytes(padding)) if padding else b""
    return box(b"ftyp", b"isom", bytes(4), b"isomavc1") + box(b"moov", mvhd, trak, mvex, free)


def message(stream: str, kind: str, sequence: int, payload: bytes = b"", topic: bytes | None = None, **header):
    return [topic if topic is not None else f"{stream}/{'event' if kind == 'event' else kind}".encode(),
            json.dumps({"stream": stream, "kind": kind, "sequence": sequence, **header}).encode(), payload]


def frame(stream: str, sequence: int, payload: bytes, **header):
    fields = {"track": 1, "keyframe": True, "dts": 0, "pts": 0, "timescale": 90000, "track_kind": "video", **header}
    return message(stream, "frame", sequence, payload, **fields)


END = message("cam1", "event", 1, event="end")


class Publisher:
    """An XPUB on an ephemeral port that waits for its first subscription before sending."""

    def __init__(self):
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.XPUB)
        self.socket.setsockopt(zmq.SNDHWM, 0)
        self.socket.setsockopt(zmq.LINGER, 5000)
        port = self.socket.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"

    def wait_for_subscriber(self, timeout: float = 20) -> None:
        if not self.socket.poll(int(timeout * 1000)):
            raise AssertionError("no subscriber came")
        self.socket.recv()
        # A subscriber of several topic prefixes sends one subscription each: take them all.
        while self.socket.poll(200):
            self.socket.recv()

    def send(self, frames: list[bytes]) -> None:
        self.socket.send_multipart(frames)

    def close(self) -> None:
        self.socket.close()
        self.context.term()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()


# Frames of the "pending" case.
PENDING_FRAMES = 16


def cases() -> dict:
    """What each memory case sends after the subscriber has subscribed."""
    def header():
        # Valid JSON whose every 3 bytes are a dict: 15 MB of header.
        fields = '{"a":[' + ",".join(["{}"] * (5 << 20)) + "]}"
        text = '{"stream":"cam1","kind":"event","sequence":1,"event":"x","fields":' + fields + "}"
        yield [b"cam1/event", text.encode(), b""]

    def inits():
        for index in range(30):
            yield message(f"cam{index}", "init", 1, init_segment(64, 64, padding=20 << 20))

    def start_codes():
        yield message("cam1", "init", 1, init_segment(64, 64))
        yield frame("cam1", 1, b"\0\0\0\1" + b"\0\0\1" * (10 << 20))

    def sps_bomb():
        yield message("cam1", "init", 1, init_segment(64, 64))
        yield frame("cam1", 1, keyframe(16000, 16000))

    def many_frames():
        # A message of a million empty parts.
        yield [b"cam1/frame"] + [b""] * 1_000_000

    def extra_frame():
        # A good message, then a fourth part of 200 MB.
        yield message("cam1", "init", 1, init_segment(64, 64)) + [bytes(200 << 20)]

    def baseline():
        yield message("cam1", "init", 1, init_segment(64, 64))
        yield frame("cam1", 1, keyframe(64, 64))

    def pending():
        # 16 keyframes of 20 MB (filler data after the slice) that the decoder holds 15 back.
        parameter_set = delayed_sps(4, 4)
        yield message("cam1", "init", 1, init_segment(64, 64, parameter_set=parameter_set))
        for index in range(PENDING_FRAMES):
            yield frame("cam1", index + 2, annex_b(parameter_set, pps(), idr_slice(16), b"\x0c" + b"\xff" * (20 << 20)),
                        pts=index, dts=index)

    def many_decoders():
        # 40 streams, each a picture as large as the limits allow (5760 x 2880).
        picture = keyframe(5760, 2880)
        for index in range(40):
            yield message(f"cam{index}", "init", 1, init_segment(5760, 2880))
            yield frame(f"cam{index}", 2, picture)

    def save_start_codes():
        yield from start_codes()
        yield frame("cam1", 2, keyframe(64, 64))

    return {"pending": pending, "many-decoders": many_decoders, "save-start-codes": save_start_codes, "baseline": baseline, "header": header, "inits": inits, "start-codes": start_codes, "sps-bomb": sps_bomb,
            "many-frames": many_frames, "extra-frame": extra_frame}


# ru_maxrss survives execve: a child reports at least its parent's peak when it was spawned. Each case
# runs in a fresh process that spawns its subscriber first, and VmHWM (this process's own) is shown too.
HWM = """
def hwm():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmHWM"))
"""

SUBSCRIBER = HWM + """
import json, resource, sys
from camflow_client.subscriber import StreamDecoders, Subscriber
subscriber = Subscriber(sys.argv[1], idle_timeout=60)
decoders = StreamDecoders(None, "bgr24", False)
pictures = 0
for message in subscriber:
    if message.kind == "event" and message.header.get("event") == "end":
        break
    pictures += len(decoders.take(message))
pictures += len(decoders.flush())
print(json.dumps({"maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, "hwm_mb": hwm(),
                  "pictures": pictures, "malformed": subscriber.malformed,
                  "retained_init_bytes": sum(len(m.payload) for m in subscriber.inits.values())}))
"""


SAVE = HWM + """
import json, os, resource, sys, tempfile
from camflow_client.__main__ import main
with tempfile.TemporaryDirectory() as directory:
    code = main(["save", sys.argv[1], "--stream", "cam1", "--out", os.path.join(directory, "out.mp4"), "--frames", "1",
                 "--idle-timeout", "10"])
print(json.dumps({"maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, "hwm_mb": hwm(),
                  "exit": code}))
"""


def measure(case: str) -> dict:
    """The peak RSS of a subscriber process (MB) that takes ``case`` and then an end event
    (``python -m camflow_client save`` for the save- cases, decoding subscriber otherwise)."""
    with Publisher() as publisher:
        script = SAVE if case.startswith("save-") else SUBSCRIBER
        child = subprocess.Popen([sys.executable, "-c", script, publisher.endpoint], stdout=subprocess.PIPE,
                                 text=True)
        try:
            publisher.wait_for_subscriber()
            for frames in cases()[case]():
                publisher.send(frames)
            publisher.send(END)
            out, _ = child.communicate(timeout=300)
        finally:
            child.kill()
    return json.loads(out)


if __name__ == "__main__":
    if len(sys.argv) == 2:
        print(sys.argv[1], measure(sys.argv[1]), flush=True)
    else:
        for name in sys.argv[1:] or list(cases()):
            subprocess.run([sys.executable, __file__, name], check=True)
