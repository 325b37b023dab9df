"""The wire format without a publisher: parsing, sequence gaps, init segments, fragments."""
import json
import struct

import pytest

from camflow_client import Clip, Frame, Init, Keyframe, MalformedMessage, Stats, parse
from camflow_client.mp4 import annex_b_to_length_prefixed, fragment, parse_init
from camflow_client.sequence import SequenceTracker
from camflow_client.subscriber import subscriptions

from conftest import FIXTURES


def message(kind, **header):
    return [b"cam1/" + kind.encode(), json.dumps({"stream": "cam1", "kind": kind, "sequence": 1, **header}).encode(), b"x"]


def test_messages_are_typed_by_kind_and_event():
    assert isinstance(parse(message("init")), Init)
    frame = parse(message("frame", dts=10, pts=12, timescale=10, keyframe=True, track_kind="video"))
    assert isinstance(frame, Frame) and frame.is_video and frame.pts_seconds == 1.2 and frame.keyframe
    assert isinstance(parse(message("event", event="keyframe")), Keyframe)
    assert isinstance(parse(message("event", event="stats", fields={"fps": 25})), Stats)
    clip = parse(message("event", event="clip", fields={"path": "a.mp4"}))
    assert isinstance(clip, Clip) and clip.kind == "clip" and clip.fields["path"] == "a.mp4"
    assert frame.nothing_like_this is None


@pytest.mark.parametrize("frames", [[b"t"], [b"t", b"{", b""], [b"t", b"[1]", b""], [b"t", b"\xff", b""]])
def test_malformed_messages_raise_a_clear_error(frames):
    with pytest.raises(MalformedMessage):
        parse(frames)


def test_sequence_gaps_and_restarts_are_told_apart():
    tracker = SequenceTracker()
    assert tracker.observe("cam1/frame", 5) == (0, False)
    assert tracker.observe("cam1/frame", 6) == (0, False)
    assert tracker.observe("cam1/frame", 10) == (3, False)
    assert tracker.observe("cam1/frame", 0) == (0, True)
    assert tracker.observe("cam1/init", 0) == (0, False)
    assert tracker.observe("cam1/init", 0) == (0, False), "the latch sends an init segment again"
    assert (tracker.lost, tracker.restarts) == (3, 1)


def test_topics_keep_to_their_stream():
    assert subscriptions(["cam1"], None) == ["cam1/"]
    assert subscriptions(["cam1"], ["frame", "clip"]) == ["cam1/event", "cam1/frame"]
    assert subscriptions(None, None) == [""]
    with pytest.raises(ValueError):
        subscriptions(None, ["pictures"])


def init_of(name):
    data, at, init = (FIXTURES / name).read_bytes(), 0, b""
    while at < len(data):
        size, kind = struct.unpack_from(">I4s", data, at)
        if kind in (b"ftyp", b"moov"):
            init += data[at:at + size]
        at += size
    return init


def test_init_segments_name_their_tracks_and_decoder_configuration():
    init = parse_init(init_of("h264-main-aac.mp4"))
    video = init.video
    assert (video.track_id, video.codec_name, video.width, video.height, video.timescale) == (1, "h264", 640, 360, 12800)
    assert video.config[0] == 1 and video.nal_length_size == 4
    assert init.track(2).codec_name == "aac"
    hevc = parse_init(init_of("h265.mp4")).video
    assert hevc.codec_name == "hevc" and hevc.nal_length_size == 4


@pytest.mark.parametrize("cut", [8, 100, 500])
def test_a_truncated_init_segment_is_a_value_error(cut):
    with pytest.raises(ValueError):
        parse_init(init_of("h264-main-aac.mp4")[:cut])


def test_annex_b_becomes_length_prefixed():
    assert annex_b_to_length_prefixed(b"\0\0\0\1\x67ab\0\0\0\1\x68c") == b"\0\0\0\3\x67ab\0\0\0\2\x68c"


def test_fragments_parse_in_ffprobe(tmp_path):
    init = init_of("h264-baseline.mp4")
    out = tmp_path / "one.mp4"
    # A file of the fixture's init segment and one written fragment holding nothing decodable is still well-formed.
    out.write_bytes(init + fragment(1, 1, 0, [(b"\0\0\0\1\x09", 512, 0, True)]))
    import subprocess
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", str(out)],
                           capture_output=True, text=True)
    assert probe.stdout.strip() == "h264"


@pytest.mark.parametrize("header", [
    {"stream": [], "kind": "frame", "sequence": 1},
    {"stream": "cam1", "kind": [], "sequence": 1},
    {"stream": "cam1", "kind": "event", "sequence": 1, "event": []},
    {"stream": "cam1", "kind": "frame", "sequence": "x"},
    {"stream": "cam1", "kind": "frame", "sequence": True},
    {"stream": "cam1", "kind": "frame", "sequence": 1 << 70},
    {"stream": "cam1", "kind": "frame", "sequence": 1, "pts": "x"},
    {"stream": "cam1", "kind": "frame", "sequence": 1, "timescale": 1.5},
    {"stream": "cam1", "kind": "frame", "sequence": 1, "timescale": -1},
    {"stream": "cam1", "kind": "frame"},
])
def test_header_fields_of_the_wrong_type_are_malformed(header):
    with pytest.raises(MalformedMessage):
        parse([b"cam1/frame", json.dumps(header).encode(), b""])


def test_deeply_nested_json_is_malformed_not_a_recursion_error():
    with pytest.raises(MalformedMessage):
        parse([b"t", b"[" * 100000, b""])


def test_a_loss_on_the_audio_of_a_stream_makes_video_wait_for_a_keyframe():
    pytest.importorskip("av")
    from camflow_client.subscriber import StreamDecoders
    decoders = StreamDecoders("cam1", "bgr24", False)
    decoders.take(parse([b"cam1/init", json.dumps({"stream": "cam1", "kind": "init", "sequence": 0}).encode(),
                         init_of("h264-main-aac.mp4")]))
    decoder = decoders._decoders["cam1"][1]
    decoder._waiting = False
    audio = parse([b"cam1/frame", json.dumps({"stream": "cam1", "kind": "frame", "sequence": 9, "track": 2}).encode(), b"a"])
    audio.gap = 7
    assert decoders.take(audio) == []
    assert decoder._waiting, "the next video frame must be a keyframe"


def test_malformed_frames_never_end_the_iteration():
    pytest.importorskip("av")
    from camflow_client.subscriber import StreamDecoders
    decoders = StreamDecoders("cam1", "bgr24", False)
    decoders.take(parse([b"cam1/init", json.dumps({"stream": "cam1", "kind": "init", "sequence": 0}).encode(),
                         init_of("h264-main-aac.mp4")]))
    garbage = parse([b"cam1/frame", json.dumps({"stream": "cam1", "kind": "frame", "sequence": 1, "track": 1,
                                                "keyframe": True, "dts": 0, "pts": 0, "timescale": 12800}).encode(),
                     b"\0\0\0\x05\x65garbage" * 10])
    for _ in range(3):
        assert decoders.take(garbage) == []
