#!/usr/bin/env python3
"""Writes Tests/Fixtures/hostile/: crafted fragmented-MP4 streams that once
crashed camflow, held it blind, or ran its memory out, plus cases.json,
which says what each must now produce.

Each case is the init segment of h264-baseline.mp4, the hostile bytes, and
then that fixture's first fragment, whole: the parser must report the
problem and still find the good fragment after it.

    scripts/make-hostile.py        # rewrites the folder
"""
import json
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIXTURE = os.path.join(ROOT, "Tests", "Fixtures", "h264-baseline.mp4")
OUT = os.path.join(ROOT, "Tests", "Fixtures", "hostile")

INT64_MAX = (1 << 63) - 1


def box(kind, payload=b""):
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def large_box(kind, size, payload=b""):
    """A box whose 64-bit largesize says `size`, whatever follows."""
    return struct.pack(">I4sQ", 1, kind, size) + payload


def full_box(kind, version, flags, payload=b""):
    return box(kind, struct.pack(">I", version << 24 | flags) + payload)


def top_level_boxes(data):
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        boxes.append((kind, data[offset:offset + size]))
        offset += size
    return boxes


def fragment(sequence=1, track=1, tfhd_flags=0x20000, tfhd_extra=b"", tfdt=None, truns=(), mdat=b"\0" * 64,
             mdat_header=None, extra_trafs=b"", data_offset=None):
    """moof + mdat. `truns` are (version, flags, count, per-sample bytes);
    a data_offset (flag 0x01) is patched to point at the mdat payload."""
    def build(data_offset):
        traf = full_box(b"tfhd", 0, tfhd_flags, struct.pack(">I", track) + tfhd_extra)
        if tfdt is not None:
            traf += full_box(b"tfdt", 1, 0, struct.pack(">Q", tfdt & (2**64 - 1)))
        for version, flags, count, samples in truns:
            body = struct.pack(">I", count)
            if flags & 0x01:
                body += struct.pack(">i", data_offset)
            traf += full_box(b"trun", version, flags, body + samples)
        return box(b"moof", full_box(b"mfhd", 0, 0, struct.pack(">I", sequence)) + box(b"traf", traf) + extra_trafs)
    header = mdat_header if mdat_header is not None else struct.pack(">I4s", 8 + len(mdat), b"mdat")
    moof = build(0)
    moof = build(len(moof) + len(header) if data_offset is None else data_offset)
    return moof + header + mdat


def main():
    data = open(FIXTURE, "rb").read()
    boxes = top_level_boxes(data)
    init = boxes[0][1] + boxes[1][1]
    moov = boxes[1][1]
    good = boxes[2][1] + boxes[3][1]  # the first fragment, sequence 1, 25 frames

    # A video sample's flags: sync. Two samples of 100 bytes, duration 512 each.
    two_samples = struct.pack(">III", 512, 100, 0x02000000) * 2

    cases = []
    os.makedirs(OUT, exist_ok=True)

    def case(name, what, hostile, expect, fragments=1, init_segment=init):
        cases.append({"file": name + ".mp4", "what": what, "expect": expect, "fragments": fragments})
        with open(os.path.join(OUT, name + ".mp4"), "wb") as out:
            out.write(init_segment + hostile + good)

    case("mdat-largesize-near-int64-max", "a fragment whose mdat claims 2^63-2 bytes (64-bit size)",
         fragment(truns=[(0, 0x301, 2, two_samples)], mdat_header=struct.pack(">I4sQ", 1, b"mdat", INT64_MAX - 1)),
         ["box-too-large"])
    case("mdat-largesize-all-ones", "an mdat largesize of 2^64-1, negative as a signed number",
         fragment(truns=[(0, 0x301, 2, two_samples)], mdat_header=struct.pack(">I4sQ", 1, b"mdat", 2**64 - 1)),
         ["box-too-large"])
    case("tfdt-int64-max", "a tfdt of 2^63-1: the second sample's decode time overflows",
         fragment(tfdt=INT64_MAX, truns=[(0, 0x301, 2, two_samples)], mdat=b"\0" * 200), ["invalid-field"])
    case("tfdt-int64-min-negative-cto", "decode time -2^63 and a negative composition offset (trun v1)",
         fragment(tfdt=-(1 << 63), truns=[(1, 0xF01, 1, struct.pack(">IIIi", 512, 100, 0x02000000, -1))],
                  mdat=b"\0" * 100), ["invalid-field"])
    case("tfhd-base-data-offset-top-bit", "a tfhd base-data-offset with the top bit set",
         fragment(tfhd_flags=0x01, tfhd_extra=struct.pack(">Q", 1 << 63), truns=[(0, 0x301, 2, two_samples)],
                  mdat=b"\0" * 200), ["sample-outside-mdat"])
    case("tfhd-base-data-offset-past-end", "a tfhd base-data-offset of 2^62, far past the fragment",
         fragment(tfhd_flags=0x01, tfhd_extra=struct.pack(">Q", 1 << 62), truns=[(0, 0x301, 2, two_samples)],
                  mdat=b"\0" * 200), ["sample-outside-mdat"])
    case("trun-zero-size-sample-bomb", "16 truns each declaring 1M samples of 0 bytes over a 1 MiB mdat",
         fragment(truns=[(0, 0x001, 1 << 20, b"")] * 16, mdat=b"\0" * (1 << 20)), ["invalid-field"])
    case("trun-sample-size-all-ones", "a sample of 2^32-1 bytes",
         fragment(truns=[(0, 0x301, 1, struct.pack(">II", 512, 0xFFFFFFFF))], mdat=b"\0" * 64),
         ["sample-outside-mdat"])
    case("trun-data-offset-negative", "a trun data_offset that points before the moof",
         fragment(truns=[(0, 0x301, 2, two_samples)], mdat=b"\0" * 200, data_offset=-(1 << 31)),
         ["sample-outside-mdat"])
    case("free-largesize-2-62", "a free box claiming 2^62 bytes, then the stream goes on",
         large_box(b"free", 1 << 62, b"\0" * 32), ["box-too-large"])
    case("ftyp-largesize-2-62", "an ftyp claiming 2^62 bytes, then the stream goes on",
         large_box(b"ftyp", 1 << 62, b"isom" + b"\0" * 28), ["box-too-large"])
    case("mdat-size-zero", "a top-level mdat of size 0 (to the end of the file) in the middle of a stream",
         struct.pack(">I4s", 0, b"mdat") + b"\x55" * 500, [], fragments=1)
    case("moof-mdat-size-zero", "a fragment whose mdat has size 0",
         fragment(truns=[(0, 0x301, 2, two_samples)], mdat=b"", mdat_header=struct.pack(">I4s", 0, b"mdat")),
         ["invalid-box-header"])
    case("moov-too-many-tracks", "an init segment with 200 tracks",
         b"", ["invalid-field", "fragment-before-init"], fragments=0,
         init_segment=boxes[0][1] + box(b"moov", moov[8:] + top_level_boxes(moov[8:])[1][1] * 200))
    case("child-box-larger-than-parent", "a traf whose tfhd claims more bytes than the traf has",
         box(b"moof", full_box(b"mfhd", 0, 0, struct.pack(">I", 9))
             + box(b"traf", struct.pack(">I4s", 4096, b"tfhd") + b"\0" * 8)) + box(b"mdat", b"\0" * 16),
         ["invalid-box-header"])
    case("child-box-largesize-overflow", "a traf child with a 64-bit size of 2^63-1",
         box(b"moof", full_box(b"mfhd", 0, 0, struct.pack(">I", 9))
             + box(b"traf", struct.pack(">I4sQ", 1, b"tfhd", INT64_MAX) + b"\0" * 8)) + box(b"mdat", b"\0" * 16),
         ["invalid-box-header"])
    case("garbage", "64 KiB of bytes that are no boxes at all",
         bytes((i * 37 + 11) % 256 | 0x80 for i in range(65536)), ["invalid-box-header"])
    case("unknown-track", "a fragment for a track the init segment does not have",
         fragment(track=7, truns=[(0, 0x301, 2, two_samples)], mdat=b"\0" * 200), ["unknown-track"])

    with open(os.path.join(OUT, "cases.json"), "w") as out:
        json.dump(cases, out, indent=2)
        out.write("\n")
    print(f"wrote {len(cases)} cases to {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
