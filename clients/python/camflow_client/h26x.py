"""The picture size H.264 and H.265 parameter sets declare, read before a
decoder sees them: FFmpeg allocates what an SPS says (16000 x 16000 under a
64 x 64 init segment held 619 MB), so a frame whose SPS is over the limits
never reaches it. Pure Python, no dependencies; every read is bounds-checked
and every loop bounded, so hostile bytes cost at most a linear scan.
"""
from __future__ import annotations

import struct
from typing import Iterator

from .messages import DecodeError

# NAL units in one frame: real encoders write a few (parameter sets, SEI, slices), a
# few hundred with many slices. A frame of 30 MB of start codes held 10 million.
MAX_NAL_UNITS = 4096
# SPS in one frame (or decoder configuration): H.264 numbers 32 of them, H.265 16. Read bit
# by bit, 4096 SPS of long codes in one frame took seconds.
MAX_SPS = 32

_H264_SPS = 7
_HEVC_SPS = 33
# The bytes of an SPS read: its size comes in the first few dozen, and even scaling lists of the
# longest Exp-Golomb codes take under 7 KiB.
SPS_BYTES = 16 << 10
# H.264 profiles whose SPS carries chroma format, bit depths and scaling lists, as FFmpeg reads
# them (its list, not the standard's: a different list reads the size from other bits), and the
# profiles the standard adds, which are read both ways.
_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 144}
_EITHER_PROFILES = {134, 135, 139}


class _Bits:
    """The start of an RBSP, read a field at a time; reading past its end is a :class:`DecodeError`."""

    def __init__(self, nal: bytes, skip: int, unescape: bool = True):
        head = bytes(nal[skip:SPS_BYTES])
        self.data = _unescape(head) if unescape else head
        self.at = 0

    def u(self, count: int) -> int:
        end = self.at + count
        if end > len(self.data) << 3:
            raise DecodeError("a parameter set ends early")
        first, last = self.at >> 3, (end + 7) >> 3
        value = (int.from_bytes(self.data[first:last], "big") >> ((last << 3) - end)) & ((1 << count) - 1)
        self.at = end
        return value

    def ue(self) -> int:
        zeros = 0
        while True:
            index = self.at >> 3
            if index >= len(self.data):
                raise DecodeError("a parameter set ends early")
            rest = (self.data[index] << (self.at & 7)) & 0xFF  # this byte's bits not yet read, at the top
            if rest:
                zeros += 8 - rest.bit_length()
                self.at += 8 - rest.bit_length() + 1
                break
            zeros += 8 - (self.at & 7)
            self.at = (index + 1) << 3
            if zeros > 31:
                break
        if zeros > 31:
            raise DecodeError("a parameter set holds an Exp-Golomb code longer than 32 bits")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        value = self.ue()
        return (value + 1) // 2 if value & 1 else -(value // 2)


def _unescape(data: bytes) -> bytes:
    if b"\0\0\3" not in data:
        return data
    out, at = bytearray(), 0
    while True:
        found = data.find(b"\0\0\3", at)
        if found < 0:
            return bytes(out + data[at:])
        out += data[at:found + 2]
        at = found + 3


def nal_units(payload: bytes, annex_b: bool, length_size: int = 4, limit: int = MAX_NAL_UNITS) -> Iterator[memoryview]:
    """The NAL units of one frame as FFmpeg splits it (views, not copies), or more: by start codes
    (Annex B; the zeros that may trail a unit are left on it) or by length prefixes of ``length_size``
    bytes and start codes within. More than ``limit`` of them, or a length past the end of the frame,
    is a :class:`DecodeError`."""
    count = 0
    view = memoryview(payload)
    if annex_b:
        found = payload.find(b"\0\0\1")
        while found >= 0:
            count += 1
            if count > limit:
                raise DecodeError(f"a frame of more than {limit} NAL units")
            begin = found + 3
            found = payload.find(b"\0\0\1", begin)
            yield view[begin:found if found >= 0 else len(payload)]
        return
    at = 0
    while at < len(payload):
        count += 1
        if count > limit:
            raise DecodeError(f"a frame of more than {limit} NAL units")
        if at + length_size > len(payload):
            raise DecodeError(f"a NAL unit length at byte {at} is cut off")
        size = int.from_bytes(view[at:at + length_size], "big")
        at += length_size
        if size > len(payload) - at:
            raise DecodeError(f"a NAL unit at byte {at} declares {size} bytes; {len(payload) - at} are left")
        yield view[at:at + size]
        # FFmpeg ends a unit at a start code in it and reads on from there by start codes up to
        # the next length: NAL units hidden inside one are NAL units too (an escaped unit has none).
        inner = payload.find(b"\0\0\1", at, at + size)
        while inner >= 0:
            count += 1
            if count > limit:
                raise DecodeError(f"a frame of more than {limit} NAL units")
            following = payload.find(b"\0\0\1", inner + 3, at + size)
            yield view[inner + 3:following if following >= 0 else at + size]
            inner = following
        at += size


def sps_size(codec: str, nal: bytes, unescape: bool = True) -> tuple[int, int] | None:
    """(width, height) of the coded picture an SPS NAL unit declares; None for other NAL units.
    ``unescape=False`` reads the bytes as they are, emulation prevention bytes and all."""
    if codec == "h264" and nal and nal[0] & 0x1F == _H264_SPS:
        profile = nal[1] if len(nal) > 1 else 0
        if profile not in _EITHER_PROFILES:
            return _h264_sps_size(_Bits(nal, 1, unescape), profile in _HIGH_PROFILES)
        sizes = []
        for high in (False, True):
            try:
                sizes.append(_h264_sps_size(_Bits(nal, 1, unescape), high))
            except DecodeError:
                pass
        if not sizes:
            raise DecodeError("a parameter set ends early")
        return max(width for width, _ in sizes), max(height for _, height in sizes)
    if codec == "hevc" and len(nal) >= 2 and (nal[0] >> 1) & 0x3F == _HEVC_SPS:
        if (nal[0] & 1) or nal[1] >> 3:
            # A layer above the base (MV-HEVC) writes its SPS another way; camflow's cameras send none.
            raise DecodeError("an SPS of a layer above the base layer")
        return _hevc_sps_size(_Bits(nal, 2))
    return None


def _h264_sps_size(bits: _Bits, high: bool) -> tuple[int, int]:
    bits.u(8)  # profile_idc
    bits.u(16)  # constraint flags, level
    bits.ue()  # seq_parameter_set_id
    if high:
        chroma_format = bits.ue()
        if chroma_format == 3:
            bits.u(1)  # separate_colour_plane_flag
        bits.ue()  # bit_depth_luma_minus8
        bits.ue()  # bit_depth_chroma_minus8
        bits.u(1)  # qpprime_y_zero_transform_bypass_flag
        if bits.u(1):  # seq_scaling_matrix_present_flag
            for index in range(8 if chroma_format != 3 else 12):
                if bits.u(1):
                    last = following = 8
                    for _ in range(16 if index < 6 else 64):
                        if following:
                            following = (last + bits.se() + 256) % 256
                        last = following or last
    bits.ue()  # log2_max_frame_num_minus4
    order = bits.ue()
    if order == 0:
        bits.ue()
    elif order == 1:
        bits.u(1)
        bits.se()
        bits.se()
        cycle = bits.ue()
        if cycle > 255:
            raise DecodeError(f"an SPS with {cycle} reference frames in its picture order cycle")
        for _ in range(cycle):
            bits.se()
    bits.ue()  # max_num_ref_frames
    bits.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = bits.ue() + 1
    height_units = bits.ue() + 1
    frame_mbs_only = bits.u(1)
    return width_mbs * 16, height_units * 16 * (2 - frame_mbs_only)


def _hevc_sps_size(bits: _Bits) -> tuple[int, int]:
    bits.u(4)  # sps_video_parameter_set_id
    sub_layers = bits.u(3)
    bits.u(1)  # temporal_id_nesting
    bits.u(96)  # general profile, tier and level
    present = [(bits.u(1), bits.u(1)) for _ in range(sub_layers)]
    if sub_layers:
        bits.u(2 * (8 - sub_layers))
    for profile, level in present:
        bits.u(88 if profile else 0)
        bits.u(8 if level else 0)
    bits.ue()  # sps_seq_parameter_set_id
    if bits.ue() == 3:  # chroma_format_idc
        bits.u(1)
    return bits.ue(), bits.ue()


def is_record(codec: str, config: bytes) -> bool:
    """Whether FFmpeg reads a track's configuration as an avcC/hvcC record (else as Annex B), as it decides."""
    if codec == "h264":
        return len(config) > 0 and config[0] == 1
    return len(config) >= 23 and (config[0] == 1 or (config[0] == 0 and (config[1] != 0 or config[2] > 1)))


def config_units(codec: str, config: bytes, limit: int = MAX_NAL_UNITS) -> list[memoryview]:
    """The NAL units FFmpeg reads of a decoder configuration (avcC or hvcC content, or Annex B).

    FFmpeg splits each entry of a record as a unit with a 2-byte length (start codes in it
    included) and goes by each unit's own type, not the list or array it is in: an SPS in
    the PPS list is read as an SPS. So every unit is returned, whatever it is."""
    if not is_record(codec, config):
        return list(nal_units(config, True, limit=limit))
    units: list[memoryview] = []

    def entries(at: int, count: int) -> int:
        for _ in range(count):
            if at + 2 > len(config):
                raise DecodeError("the decoder configuration record is cut off")
            size = 2 + struct.unpack_from(">H", config, at)[0]
            if at + size > len(config):
                raise DecodeError("the decoder configuration record is cut off")
            units.extend(nal_units(config[at:at + size], False, 2, limit - len(units)))
            at += size
        return at

    if codec == "h264":
        if len(config) < 7:
            raise DecodeError("the decoder configuration record is cut off")
        at = entries(6, config[5] & 0x1F)
        if at < len(config):
            entries(at + 1, config[at])
        return units
    at = 23
    for _ in range(config[22]):
        if at + 3 > len(config):
            raise DecodeError("the decoder configuration record is cut off")
        at = entries(at + 3, struct.unpack_from(">H", config, at + 1)[0])
    return units


def looks_like_avcc(payload: bytes) -> bool:
    """FFmpeg's H.264 decoder takes a frame shaped like an avcC record as new parameter sets."""
    return len(payload) >= 9 and payload[0] == 1 and payload[2] == 0 and payload[4] & 0xFC == 0xFC
