"""The little of ISO-BMFF a subscriber needs, with no dependencies: the
tracks of an init segment (codec configuration for a decoder), and movie
fragments written from frames (to save a stream as MP4 without re-encoding).

Everything read from the wire is bounds-checked: a malformed init segment
raises :class:`~camflow_client.messages.MalformedMessage` (a ``ValueError``),
never ``IndexError`` or a huge allocation.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Iterator

from .messages import ClientError, MalformedMessage, printable

# The largest decoder configuration record (avcC, hvcC, esds) kept: a real one is some
# hundred bytes, and each stream's decoder keeps its own.
MAX_CONFIG = 64 << 10
# NAL units in one Annex B frame turned into length prefixes (as h26x.MAX_NAL_UNITS).
MAX_NAL_UNITS = 4096
# Tracks of an init segment (camflow's own limit), and boxes read in one at all levels (a real one
# has some dozens a track): 19 MB of empty trak or mdia boxes held 400 MB and 3 s of parsing.
MAX_TRACKS = 64
MAX_BOXES = 16384

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"mvex"}
_VISUAL_ENTRIES = {b"avc1", b"avc3", b"hev1", b"hvc1"}


@dataclass
class Track:
    """One track of an init segment."""

    track_id: int
    handler: str  # "vide", "soun", ...
    timescale: int = 0
    sample_entry: str = ""  # "avc1", "hev1", "mp4a", ...
    width: int = 0
    height: int = 0
    # The decoder configuration record: the avcC or hvcC box's content
    # (what FFmpeg calls extradata), or for AAC the esds box's content.
    config: bytes = b""

    @property
    def is_video(self) -> bool:
        return self.handler == "vide"

    @property
    def nal_length_size(self) -> int:
        """Bytes of each NAL unit's length prefix in this track's frames (H.264, H.265)."""
        if self.sample_entry in ("avc1", "avc3") and len(self.config) >= 5:
            return (self.config[4] & 3) + 1
        if self.sample_entry in ("hev1", "hvc1") and len(self.config) >= 22:
            return (self.config[21] & 3) + 1
        return 4

    @property
    def codec_name(self) -> str | None:
        """The FFmpeg decoder name: h264, hevc or aac."""
        return {"avc1": "h264", "avc3": "h264", "hev1": "hevc", "hvc1": "hevc", "mp4a": "aac"}.get(self.sample_entry)


@dataclass
class InitSegment:
    """ftyp + moov: the tracks a stream's frames belong to."""

    data: bytes
    tracks: list[Track] = field(default_factory=list)

    @property
    def video(self) -> Track | None:
        return next((t for t in self.tracks if t.is_video), None)

    def track(self, track_id: int) -> Track | None:
        return next((t for t in self.tracks if t.track_id == track_id), None)


class _Budget:
    """Boxes left to read in one init segment."""

    def __init__(self, boxes: int):
        self.left = boxes

    def take(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise MalformedMessage(f"the init segment has more than {MAX_BOXES} boxes")


def _boxes(data: bytes, start: int, end: int, budget: _Budget | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(type, content start, content end) of each box in data[start:end]."""
    at = start
    while at + 8 <= end:
        if budget is not None:
            budget.take()
        size, kind = struct.unpack_from(">I4s", data, at)
        header = 8
        if size == 1:
            if at + 16 > end:
                raise MalformedMessage(f"truncated 64-bit box size at byte {at}")
            size = struct.unpack_from(">Q", data, at + 8)[0]
            header = 16
        elif size == 0:
            size = end - at
        if size < header or at + size > end:
            # The type is four bytes from the wire: escaped, never a terminal escape when printed.
            raise MalformedMessage(f"box '{_name(kind)}' at byte {at} declares {size} bytes; {end - at} are left")
        yield kind, at + header, at + size
        at += size


def _name(kind: bytes) -> str:
    return printable(kind.decode("latin-1"))


def _config(data: bytes, start: int, end: int, kind: bytes) -> bytes:
    if end - start > MAX_CONFIG:
        raise MalformedMessage(f"a '{_name(kind)}' box of {end - start} bytes, more than {MAX_CONFIG}")
    return data[start:end]


def parse_init(data: bytes) -> InitSegment:
    """Reads the tracks of an init segment (ftyp + moov)."""
    segment = InitSegment(bytes(data))
    data = segment.data
    budget = _Budget(MAX_BOXES)
    for kind, start, end in _boxes(data, 0, len(data), budget):
        if kind == b"moov":
            for child, s, e in _boxes(data, start, end, budget):
                if child == b"trak":
                    if len(segment.tracks) >= MAX_TRACKS:
                        raise MalformedMessage(f"the init segment has more than {MAX_TRACKS} tracks")
                    segment.tracks.append(_parse_trak(data, s, e, budget))
    if not segment.tracks:
        raise MalformedMessage("the init segment has no moov with tracks")
    return segment


def _parse_trak(data: bytes, start: int, end: int, budget: _Budget) -> Track:
    track = Track(track_id=0, handler="")
    stack = [(start, end)]
    while stack:
        s, e = stack.pop()
        for kind, cs, ce in _boxes(data, s, e, budget):
            if kind in _CONTAINERS:
                stack.append((cs, ce))
            elif kind == b"tkhd" and ce - cs >= 24:
                version = data[cs]
                track.track_id = struct.unpack_from(">I", data, cs + (20 if version == 1 else 12))[0]
            elif kind == b"mdhd" and ce - cs >= 24:
                version = data[cs]
                track.timescale = struct.unpack_from(">I", data, cs + (20 if version == 1 else 12))[0]
            elif kind == b"hdlr" and ce - cs >= 12:
                track.handler = data[cs + 8:cs + 12].decode("latin-1")
            elif kind == b"stsd" and ce - cs >= 8:
                _parse_stsd(data, cs + 8, ce, track, budget)
    return track


def _parse_stsd(data: bytes, start: int, end: int, track: Track, budget: _Budget) -> None:
    for entry, s, e in _boxes(data, start, end, budget):
        track.sample_entry = entry.decode("latin-1")
        if entry in _VISUAL_ENTRIES and e - s >= 78:
            track.width, track.height = struct.unpack_from(">HH", data, s + 24)
            for child, cs, ce in _boxes(data, s + 78, e, budget):
                if child in (b"avcC", b"hvcC"):
                    track.config = _config(data, cs, ce, child)
        elif entry == b"mp4a" and e - s >= 28:
            for child, cs, ce in _boxes(data, s + 28, e, budget):
                if child == b"esds":
                    track.config = _config(data, cs, ce, child)
        return  # the first sample entry describes the track


def annex_b_to_length_prefixed(payload: bytes, length_size: int = 4, max_nal_units: int = MAX_NAL_UNITS) -> bytes:
    """Start-code-delimited NAL units (camflow's ``annexb: true``) to MP4's length prefixes; more than
    ``max_nal_units`` start codes (a frame of 30 MB of them held 457 MB), or a NAL unit longer than the
    prefix can say, is a :class:`~camflow_client.messages.ClientError`."""
    units, at = [], 0
    starts = []
    while True:
        found = payload.find(b"\x00\x00\x01", at)
        if found < 0:
            break
        if len(starts) >= max_nal_units:
            raise ClientError(f"a frame of more than {max_nal_units} NAL units")
        starts.append(found + 3)
        at = found + 3
    for index, begin in enumerate(starts):
        finish = len(payload) if index + 1 == len(starts) else starts[index + 1] - 3
        unit = payload[begin:finish].rstrip(b"\x00") if index + 1 < len(starts) else payload[begin:finish]
        if unit:
            try:
                units.append(len(unit).to_bytes(length_size, "big") + unit)
            except OverflowError:
                raise ClientError(f"a NAL unit of {len(unit)} bytes, more than a {length_size}-byte length says") from None
    return b"".join(units)


def is_annex_b(payload: bytes) -> bool:
    """camflow's Annex B frames start with a 4-byte start code; an AVCC length of 1 is no real NAL unit."""
    return payload[:4] == b"\x00\x00\x00\x01"


SYNC_FLAGS = 0x0200_0000  # depends on no other sample
NON_SYNC_FLAGS = 0x0101_0000  # depends on others, not a sync sample


def fragment(sequence: int, track_id: int, dts: int, samples: list[tuple[bytes, int, int, bool]]) -> bytes:
    """One moof + mdat for ``samples`` of one track: (data, duration, pts - dts, keyframe) each,
    the first decoded at ``dts``. A version 1 trun, so composition offsets may be negative.
    A value the boxes cannot hold is a :class:`~camflow_client.messages.ClientError`."""
    try:
        return _fragment(sequence, track_id, dts, samples)
    except struct.error as error:
        raise ClientError(f"a fragment cannot hold these samples: {error}") from None


def _fragment(sequence: int, track_id: int, dts: int, samples: list[tuple[bytes, int, int, bool]]) -> bytes:
    count = len(samples)
    trun_size = 20 + 16 * count
    traf_size = 8 + 16 + 20 + trun_size
    moof_size = 8 + 16 + traf_size
    out = bytearray()
    out += struct.pack(">I4s", moof_size, b"moof")
    out += struct.pack(">I4sII", 16, b"mfhd", 0, sequence & 0xFFFFFFFF)
    out += struct.pack(">I4s", traf_size, b"traf")
    out += struct.pack(">I4sII", 16, b"tfhd", 0x020000, track_id)
    out += struct.pack(">I4sIQ", 20, b"tfdt", 0x01000000, dts & 0xFFFFFFFFFFFFFFFF)
    out += struct.pack(">I4sIIi", trun_size, b"trun", 0x01000F01, count, moof_size + 8)
    for data, duration, offset, keyframe in samples:
        out += struct.pack(">IIIi", duration, len(data), SYNC_FLAGS if keyframe else NON_SYNC_FLAGS, offset)
    out += struct.pack(">I4s", 8 + sum(len(s[0]) for s in samples), b"mdat")
    for data, _, _, _ in samples:
        out += data
    return bytes(out)
