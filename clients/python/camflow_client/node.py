#!/usr/bin/env python3
"""Read and write camflow packets on stdin/stdout: the framing of the `exec` node.

Each packet is a 4-byte big-endian header length, the JSON header (stream,
kind, sequence, codec, timescale, dts, pts, duration, keyframe, width,
height, track, track_kind, received_at_ns; events add event and fields), a 4-byte
big-endian payload length and the payload.

    from camflow_client.node import packets, emit
    for header, payload in packets():
        if header.get("keyframe"):
            emit(header, payload)
"""
import json
import struct
import sys


# camflow's own limit on a packet: a length beyond it is a broken pipe, not a packet.
MAX_LENGTH = 256 << 20


def _read_exactly(stream, count):
    if count > MAX_LENGTH:
        raise ValueError(f"a length of {count} bytes is beyond the {MAX_LENGTH} a packet may have")
    data = bytearray()
    while len(data) < count:
        chunk = stream.read(min(count - len(data), 1 << 20))
        if not chunk:
            if data:
                raise EOFError("the input ended inside a packet")
            return None
        data += chunk
    return bytes(data)


def _read_packet(stream):
    size = _read_exactly(stream, 4)
    if size is None:
        return None
    def part(count):
        data = _read_exactly(stream, count)
        if data is None and count:
            raise EOFError("the input ended inside a packet")
        return data or b""
    header = json.loads(part(struct.unpack(">I", size)[0]) or b"null")
    if not isinstance(header, dict):
        raise ValueError("a packet header is not a JSON object")
    payload = part(struct.unpack(">I", part(4))[0])
    return header, payload


def packets(stream=None):
    """Yield (header dict, payload bytes) until the input ends.

    Asking for the next packet acknowledges the previous one: camflow keeps a
    packet until then (at most `max-unacked` of them), and gives it to the
    next child if this one dies.
    """
    stream = stream or sys.stdin.buffer
    previous = None
    while True:
        if previous is not None:
            _write({"ack": previous})
        packet = _read_packet(stream)
        if packet is None:
            return
        header, payload = packet
        previous = header.get("ack_sequence")
        yield header, payload


def _write(header, payload=b"", stream=None):
    stream = stream or sys.stdout.buffer
    encoded = json.dumps(header, separators=(",", ":")).encode()
    stream.write(struct.pack(">I", len(encoded)) + encoded + struct.pack(">I", len(payload)) + payload)
    stream.flush()


def emit(header, payload=b"", stream=None):
    """Write one packet (header dict, payload bytes) and flush it."""
    header = {key: value for key, value in header.items() if key != "ack_sequence"}
    _write(header, payload, stream)
