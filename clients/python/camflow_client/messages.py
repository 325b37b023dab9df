"""camflow's ZeroMQ messages as Python objects: three frames (topic, JSON
header, payload) become a typed message whose header fields read as
attributes (``message.dts``, ``message.keyframe``)."""
from __future__ import annotations

import json
import time
import unicodedata
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Message:
    """One message of a camflow publisher."""

    topic: str
    header: dict[str, Any]
    payload: bytes
    # When this process received it, in seconds since 1970 (time.time()).
    received_at: float = field(default_factory=time.time)
    # Messages of this topic lost just before this one (from sequence numbers).
    gap: int = 0
    # The publisher's sequence went back: it restarted (or another took its place).
    restarted: bool = False

    @property
    def stream(self) -> str:
        return self.header.get("stream", "")

    @property
    def kind(self) -> str:
        """init, fragment, frame, keyframe, stats, clip, event (or bytes)."""
        return self.header.get("kind", "")

    @property
    def sequence(self) -> int:
        return int(self.header.get("sequence", 0)) & _UINT64

    def __getattr__(self, name: str) -> Any:
        # Header fields as attributes: codec, timescale, dts, pts, duration, keyframe, width, height,
        # track, track_kind, received_at_ns, discontinuity, event, fields. Absent ones read None.
        if name.startswith("__"):
            raise AttributeError(name)
        return self.__dict__.get("header", {}).get(name)

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.header.items() if k not in ("stream", "kind")}
        return f"<{type(self).__name__} {printable(self.topic)} {len(self.payload)} B {shown}>"


class Init(Message):
    """An init segment (ftyp + moov): what decodes the stream's frames."""


class Fragment(Message):
    """One MP4 fragment (moof + mdat)."""


class Frame(Message):
    """One access unit, audio or video, as stored in MP4 (or Annex B)."""

    @property
    def pts_seconds(self) -> float | None:
        return self.pts / self.timescale if self.pts is not None and self.timescale else None

    @property
    def is_video(self) -> bool:
        return self.track_kind == "video" or (self.track_kind is None and self.width is not None)


class Event(Message):
    """Structured data: ``name`` and ``fields``."""

    @property
    def kind(self) -> str:
        return "event"

    @property
    def name(self) -> str:
        return self.header.get("event", "")

    @property
    def fields(self) -> dict[str, Any]:
        return self.header.get("fields") or {}


class Keyframe(Event):
    """The keyframes node's note of a keyframe (interval, size)."""

    @property
    def kind(self) -> str:
        return "keyframe"


class Stats(Event):
    """The stats node's figures: frame rate, bitrate, keyframe interval."""

    @property
    def kind(self) -> str:
        return "stats"


class Clip(Event):
    """An event clip event-record finished: path, start, end, reason."""

    @property
    def kind(self) -> str:
        return "clip"


_BY_KIND = {"init": Init, "fragment": Fragment, "frame": Frame}
_BY_EVENT = {"keyframe": Keyframe, "stats": Stats, "clip": Clip}

# Topic kinds a subscriber can ask for: the part after the stream in `cam1/frame`.
KINDS = ("init", "fragment", "frame", "keyframe", "stats", "clip", "event")


class ClientError(ValueError):
    """What this client refuses or cannot do with what it received, whatever library found it
    (PyAV, numpy, struct): the one error type to catch. A ValueError, as bad input is."""


class MalformedMessage(ClientError):
    """Not a camflow message: not three frames, or a header that is not a JSON object."""


class DecodeError(ClientError):
    """A frame or picture this client does not decode: over a limit, or rejected by the decoder."""


# The largest header read, in bytes: camflow's own limit (PacketHeader.Limits.headerBytes).
# A JSON parser makes ~30 bytes of objects of each byte: 15 MB of header held 417 MB.
MAX_HEADER = 64 << 10
# The longest topic: a stream name (at most 256 bytes at camflow) and a kind.
MAX_TOPIC = 1024
# The longest stream name, codec and event name, in UTF-8 bytes (camflow's too).
MAX_NAME = 256
# How deep a header's JSON may nest (events' fields are flat at camflow): printing or
# copying a deeper one would meet Python's recursion limit.
MAX_DEPTH = 32

_UINT64 = (1 << 64) - 1
_INT64 = (-(1 << 63), (1 << 63) - 1)
# Header fields, the types camflow writes them as and the values it allows; anything else is a malformed message.
_FIELDS = {
    "stream": str, "kind": str, "sequence": int, "codec": str, "timescale": int, "dts": int, "pts": int,
    "duration": int, "keyframe": bool, "width": int, "height": int, "track": int, "track_kind": str,
    "discontinuity": bool, "received_at_ns": int, "event": str, "fields": dict,
}
_RANGES = {"timescale": (0, 0xFFFF_FFFF), "track": (0, 0xFFFF_FFFF), "width": (0, 65535), "height": (0, 65535),
           "duration": (0, 1 << 40)}
_NAMES = ("stream", "codec", "event")


def _check(topic: str, header: dict) -> None:
    for key, kind in _FIELDS.items():
        value = header.get(key)
        if value is None:
            if key in ("stream", "kind", "sequence"):
                raise MalformedMessage(f"{topic}: the header has no '{key}'")
            continue
        # bool is an int in Python: a number field must not be true or false, nor a flag a number.
        if kind is int and (not isinstance(value, int) or isinstance(value, bool) or not _INT64[0] <= value <= _INT64[1]):
            raise MalformedMessage(f"{topic}: '{key}' is not a 64-bit integer")
        if kind is not int and not isinstance(value, kind):
            raise MalformedMessage(f"{topic}: '{key}' is not a {kind.__name__}")
        low, high = _RANGES.get(key, _INT64)
        if kind is int and not low <= value <= high:
            raise MalformedMessage(f"{topic}: '{key}' is {value}, outside {low}...{high}")
        # As camflow: control characters (Cc) refused, other unprintable ones (a zero-width joiner in
        # an emoji) allowed, and escaped when printed.
        if key in _NAMES and (not value or len(value.encode("utf-8", "replace")) > MAX_NAME
                              or any(unicodedata.category(c) == "Cc" for c in value)):
            raise MalformedMessage(f"{topic}: '{key}' must be 1 to {MAX_NAME} bytes without control characters")
    # camflow counts in 64 bits unsigned and writes the bit pattern signed: past 2^63 a sequence reads negative.
    header["sequence"] &= _UINT64
    _check_depth(topic, header)


def _check_depth(topic: str, header: dict) -> None:
    # Without recursion: the point is to refuse what recursion would choke on.
    level = [header]
    for _ in range(MAX_DEPTH):
        level = [child for value in level
                 for child in (value.values() if isinstance(value, dict) else value)
                 if isinstance(child, (dict, list))]
        if not level:
            return
    raise MalformedMessage(f"{topic}: the header nests deeper than {MAX_DEPTH}")


def parse(frames: list[bytes], received_at: float | None = None, max_header: int = MAX_HEADER) -> Message:
    """The typed message of a three-frame ZeroMQ message; :class:`MalformedMessage` for anything else,
    a header over ``max_header`` bytes included (before it is parsed)."""
    if len(frames) != 3:
        raise MalformedMessage(f"expected 3 frames (topic, header, payload), got {len(frames)}")
    if len(frames[0]) > MAX_TOPIC:
        raise MalformedMessage(f"a topic of {len(frames[0])} bytes, more than {MAX_TOPIC}")
    topic = bytes(frames[0]).decode("utf-8", "replace")
    if len(frames[1]) > max_header:
        raise MalformedMessage(f"{printable(topic)}: the header has {len(frames[1])} bytes, more than {max_header}")
    try:
        header = json.loads(bytes(frames[1]))
    except (ValueError, RecursionError) as error:
        raise MalformedMessage(f"{printable(topic)}: the header is not JSON: {type(error).__name__}") from None
    if not isinstance(header, dict):
        raise MalformedMessage(f"{printable(topic)}: the header is not a JSON object")
    _check(printable(topic), header)
    kind = header["kind"]
    cls = _BY_EVENT.get(header.get("event"), Event) if kind == "event" else _BY_KIND.get(kind, Message)
    return cls(topic, header, bytes(frames[2]), received_at if received_at is not None else time.time())


def printable(text: str, limit: int | None = 120) -> str:
    """Text from the wire, safe to print: what is not printable, and the backslash that would make an
    escape ambiguous, as \\xNN (\\uNNNN beyond Latin-1): no terminal escapes. Cut at ``limit`` characters."""
    cut = text if limit is None else text[:limit]
    escaped = "".join(c if c.isprintable() and c != "\\" else _escape(c) for c in cut)
    return escaped + ("…" if limit is not None and len(text) > limit else "")


def _escape(c: str) -> str:
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def topic_kind(message: Message) -> str:
    """The kind a topic names: keyframe and stats events have topics of their own; clip is an event."""
    return "event" if message.kind == "clip" else message.kind


def matches(message: Message, kinds: set) -> bool:
    """Whether ``message`` is of one of ``kinds``; asking for events includes clips."""
    return message.kind in kinds or topic_kind(message) in kinds
