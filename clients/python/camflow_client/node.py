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

from .messages import ClientError

# camflow's own limit on a packet: a length beyond it is a broken pipe, not a packet.
MAX_LENGTH = 256 << 20
# camflow's limit on a header it reads from a child, and more than any it writes (64 KiB and the
# ack_sequence): a JSON parser makes ~30 bytes of objects of each byte of header.
MAX_HEADER = 1 << 20
_UINT64 = (1 << 64) - 1


def _read_exactly(stream, count, limit=MAX_LENGTH, what="packet"):
    if count > limit:
        raise ClientError(f"a length of {count} bytes is beyond the {limit} a {what} may have")
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
    def part(count, limit=MAX_LENGTH, what="packet"):
        data = _read_exactly(stream, count, limit, what)
        if data is None and count:
            raise EOFError("the input ended inside a packet")
        return data or b""
    try:
        header = json.loads(part(struct.unpack(">I", size)[0], MAX_HEADER, "header") or b"null")
    except (ValueError, RecursionError) as error:
        if isinstance(error, ClientError):
            raise
        raise ClientError(f"a packet header is not JSON: {type(error).__name__}") from None
    if not isinstance(header, dict):
        raise ClientError("a packet header is not a JSON object")
    payload = part(struct.unpack(">I", part(4))[0])
    return header, payload


def packets(stream=None, out=None):
    """Yield (header dict, payload bytes) until the input ends (from stdin when ``stream`` is None).

    Asking for the next packet acknowledges the previous one (on stdout when ``out`` is None):
    camflow keeps a packet until then (at most `max-unacked` of them), and gives it to the
    next child if this one dies. Framing that breaks camflow's (a header over 1 MiB or not a
    JSON object, a payload over 256 MiB) is a :class:`~camflow_client.ClientError`; input that
    ends inside a packet an EOFError.
    """
    stream = stream or sys.stdin.buffer
    previous = None
    while True:
        if previous is not None:
            _write({"ack": previous}, stream=out)
        packet = _read_packet(stream)
        if packet is None:
            return
        header, payload = packet
        previous = header.get("ack_sequence")
        if previous is not None:
            if not isinstance(previous, int) or isinstance(previous, bool) or not -(1 << 63) <= previous <= _UINT64:
                raise ClientError("a packet's ack_sequence is not a 64-bit integer")
            # camflow writes its unsigned count as the signed bit pattern, and reads the ack back unsigned.
            previous &= _UINT64
        yield header, payload


def _write(header, payload=b"", stream=None):
    stream = stream or sys.stdout.buffer
    try:
        # NaN and Infinity are not JSON: camflow would refuse the packet (and end the child).
        encoded = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError, RecursionError) as error:
        raise ClientError(f"the header does not encode as JSON: {error}") from None
    if len(encoded) > MAX_HEADER or len(payload) > MAX_LENGTH:
        raise ClientError(f"a packet of a {len(encoded)}-byte header and a {len(payload)}-byte payload: camflow "
                          f"reads at most {MAX_HEADER} and {MAX_LENGTH}")
    stream.write(struct.pack(">I", len(encoded)) + encoded + struct.pack(">I", len(payload)) + payload)
    stream.flush()


def emit(header, payload=b"", stream=None):
    """Write one packet (header dict, payload bytes) and flush it; a header that is not JSON
    or a packet over camflow's limits is a :class:`~camflow_client.ClientError`, nothing written."""
    header = {key: value for key, value in header.items() if key != "ack_sequence"}
    _write(header, payload, stream)
