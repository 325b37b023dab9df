"""A hostile publisher (a real ZeroMQ PUB socket from pyzmq) against the client: every limit holds,
every library error is the client's own, and nothing from the wire reaches a terminal unescaped."""
import subprocess
import sys

import pytest

from camflow_client import ClientError, DecodeError, MalformedMessage, Subscriber, parse
from camflow_client.messages import printable
from camflow_client.mp4 import annex_b_to_length_prefixed, parse_init
from camflow_client.sequence import SequenceTracker

import hostile
from hostile import END, Publisher, box, frame, init_segment, keyframe, message, sps


def received(publisher, subscriber, *messages):
    """What ``subscriber`` yields of ``messages`` sent by ``publisher``, up to the end event."""
    publisher.wait_for_subscriber()
    for frames in messages:
        publisher.send(frames)
    publisher.send(END)
    out = []
    for got in subscriber:
        if got.kind == "event" and got.header.get("event") == "end":
            return out
        out.append(got)
    raise AssertionError("the end event did not arrive")


def client(*args):
    """``python -m camflow_client`` with ``args``, running (the caller sends, then communicates)."""
    return subprocess.Popen([sys.executable, "-m", "camflow_client", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


# Item: the header is bounded before it is parsed.

def test_a_header_over_the_limit_is_skipped_before_it_is_parsed():
    big = message("cam1", "event", 1, event="x", fields={"a": [{}] * 400_000})  # 1.6 MB of header
    with Publisher() as publisher, Subscriber(publisher.endpoint, idle_timeout=10) as subscriber:
        got = received(publisher, subscriber, big, message("cam1", "event", 2, event="small"))
        assert [m.header["event"] for m in got] == ["small"]
        assert subscriber.malformed == 1
    with pytest.raises(MalformedMessage, match="more than 65536"):
        parse(big)


def test_the_header_limit_is_configurable():
    big = message("cam1", "event", 1, event="x", fields={"a": [{}] * 400_000})
    with Publisher() as publisher, Subscriber(publisher.endpoint, idle_timeout=10, max_header=2 << 20) as subscriber:
        assert [m.header["event"] for m in received(publisher, subscriber, big)] == ["x"]
    assert parse(big, max_header=2 << 20).fields["a"] == [{}] * 400_000


# Item: init segments kept across streams are bounded in bytes.

def test_init_segments_kept_are_bounded_in_bytes_across_streams():
    inits = [message(f"cam{index}", "init", 1, init_segment(64, 64, padding=300_000)) for index in range(10)]
    huge = message("huge", "init", 1, init_segment(64, 64, padding=2 << 20))
    with Publisher() as publisher, Subscriber(publisher.endpoint, idle_timeout=10, max_init_bytes=1 << 20) as subscriber:
        got = received(publisher, subscriber, *inits, huge)
        assert len(got) == 11, "every init segment is still delivered"
        assert sum(len(m.payload) for m in subscriber.inits.values()) <= 1 << 20
        assert list(subscriber.inits) == ["cam7", "cam8", "cam9"], "the latest are kept, the one over the limit not"
    assert Subscriber.MAX_INIT_BYTES == 16 << 20


def test_init_segments_of_too_many_tracks_or_boxes_are_malformed():
    # 19 MB of either held 400 MB for 3 s before.
    ftyp = box(b"ftyp", b"isom", bytes(8))
    with pytest.raises(MalformedMessage, match="more than 64 tracks"):
        parse_init(ftyp + box(b"moov", box(b"trak") * 65))
    with pytest.raises(MalformedMessage, match="more than 16384 boxes"):
        parse_init(ftyp + box(b"moov", box(b"trak", box(b"mdia") * 20000)))
    assert len(parse_init(ftyp + box(b"moov", box(b"trak") * 64)).tracks) == 64


# Item: start-code scan work is bounded.

def test_a_frame_of_start_codes_is_refused_before_the_decoder_and_the_remux():
    pytest.importorskip("av")
    from camflow_client.decode import VideoDecoder
    bomb = b"\0\0\0\1" + b"\0\0\1" * 5000
    with pytest.raises(ClientError, match="more than 4096 NAL units"):
        annex_b_to_length_prefixed(bomb)
    assert annex_b_to_length_prefixed(bomb, max_nal_units=6000) == b""
    decoder = VideoDecoder(parse_init(init_segment(64, 64)))
    assert decoder.decode(parse(frame("cam1", 1, bomb))) == []
    assert decoder.rejected == 1 and "more than 4096 NAL units" in decoder.last_error
    assert [p.image.shape for p in decoder.decode(parse(frame("cam1", 2, keyframe(64, 64))))] == [(64, 64, 3)]
    # Length-prefixed frames are counted too, and a length past the end is refused.
    decoder = VideoDecoder(parse_init(init_segment(64, 64)), max_nal_units=100)
    prefixed = b"\0\0\0\2\x09\xf0" * 101
    assert decoder.decode(parse(frame("cam1", 1, prefixed))) == [] and "more than 100" in decoder.last_error
    assert decoder.decode(parse(frame("cam1", 2, b"\0\1\0\0\x65"))) == [] and "declares 65536" in decoder.last_error


def test_save_skips_a_frame_of_start_codes_and_writes_the_next_keyframe(tmp_path):
    out = tmp_path / "out.mp4"
    with Publisher() as publisher:
        child = client("save", publisher.endpoint, "--stream", "cam1", "--out", str(out), "--frames", "1",
                       "--idle-timeout", "10")
        publisher.wait_for_subscriber()
        publisher.send(message("cam1", "init", 1, init_segment(64, 64)))
        publisher.send(frame("cam1", 2, b"\0\0\0\1" + b"\0\0\1" * 5000))
        publisher.send(frame("cam1", 3, keyframe(64, 64)))
        _, stderr = child.communicate(timeout=60)
    assert child.returncode == 0, stderr
    probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                            "stream=nb_read_frames,width,height", "-of", "csv=p=0", str(out)],
                           capture_output=True, text=True, check=True)
    assert probe.stdout.strip().split(",")[:3] == ["64", "64", "1"], probe.stdout


# Item: decoded pictures are bounded, from the SPS on.

def test_an_sps_hidden_behind_a_start_code_inside_a_length_prefixed_unit_is_checked():
    pytest.importorskip("av")
    from camflow_client.decode import VideoDecoder
    # FFmpeg ends a length-prefixed unit at a start code inside it and reads the rest by start codes.
    decoder = VideoDecoder(parse_init(init_segment(64, 64)))
    assert len(decoder.decode(parse(frame("cam1", 1, annex_b_to_length_prefixed(keyframe(64, 64)))))) == 1
    inner = b"\x0c\xff\xff" + keyframe(16000, 16000)
    hidden = len(inner).to_bytes(4, "big") + inner
    assert decoder.decode(parse(frame("cam1", 2, hidden))) == []
    assert "SPS is 16000x16000" in decoder.last_error


def test_a_refused_first_frame_does_not_decide_how_frames_are_read():
    pytest.importorskip("av")
    from camflow_client.decode import VideoDecoder
    decoder = VideoDecoder(parse_init(init_segment(64, 64)))
    # Refused (Annex B, an SPS over the limit), then the stream's frames, length-prefixed as avcC says.
    assert decoder.decode(parse(frame("cam1", 1, keyframe(16000, 16000)))) == []
    prefixed = annex_b_to_length_prefixed(keyframe(64, 64))
    assert [p.image.shape for p in decoder.decode(parse(frame("cam1", 2, prefixed)))] == [(64, 64, 3)]


def test_message_parts_over_max_message_are_libzmqs_to_refuse():
    big = message("cam1", "event", 1, b"x" * (2 << 20), event="big")
    with Publisher() as publisher, Subscriber(publisher.endpoint, idle_timeout=0.5, max_message=1 << 20) as subscriber:
        publisher.wait_for_subscriber()
        publisher.send(big)
        # libzmq drops the connection as a protocol error (its subscription goes), and does not
        # connect to that publisher again.
        assert publisher.socket.poll(10_000) and publisher.socket.recv() == b"\x00"
        publisher.send(END)
        assert list(subscriber) == [] and subscriber.malformed == 0
    with Publisher() as publisher, Subscriber(publisher.endpoint, idle_timeout=10) as subscriber:
        assert [m.header["event"] for m in received(publisher, subscriber, big)] == ["big"]
    assert Subscriber.MAX_MESSAGE == 256 << 20


def test_an_sps_over_the_limit_in_a_frame_is_refused_before_the_decoder_allocates():
    pytest.importorskip("av")
    from camflow_client.decode import VideoDecoder
    decoder = VideoDecoder(parse_init(init_segment(64, 64)))
    assert decoder.decode(parse(frame("cam1", 1, keyframe(16000, 16000)))) == []
    assert decoder.rejected == 1 and "SPS is 16000x16000" in decoder.last_error
    assert decoder._context is None, "no decoder was kept for it"
    assert [p.image.shape for p in decoder.decode(parse(frame("cam1", 2, keyframe(64, 64))))] == [(64, 64, 3)]
    # Each bound alone: 8192 on a side, 3840 x 2160 x 2 pixels in all.
    for width, height in ((8208, 16), (16, 8208), (4096, 4096)):
        assert decoder.decode(parse(frame("cam1", 3, keyframe(width, height)))) == []
        assert f"SPS is {width}x{height}" in decoder.last_error


def test_an_init_segment_whose_sps_is_over_the_limit_is_not_decoded():
    pytest.importorskip("av")
    from camflow_client.decode import VideoDecoder
    # The sample entry says 64 x 64, its avcC's SPS 16000 x 16000.
    with pytest.raises(DecodeError, match="SPS is 16000x16000"):
        VideoDecoder(parse_init(init_segment(64, 64, parameter_set=sps(1000, 1000))))
    with pytest.raises(DecodeError, match="picture is 9000x64"):
        VideoDecoder(parse_init(init_segment(9000, 64, parameter_set=sps(4, 4))))


def test_an_sps_is_also_checked_as_ffmpeg_rereads_it_unescaped():
    pytest.importorskip("av")
    from camflow_client.decode import VideoDecoder
    from camflow_client.h26x import sps_size
    # FFmpeg reads an avcC SPS it fails to parse once more, its emulation prevention bytes as data. Here
    # offset_for_non_ref_pic's 23 leading zeros hold one (00 00 03 01): read unescaped the SPS says 64x64,
    # read as it is the fields after it shift by 10 bits and the width's Exp-Golomb code takes 13 zeros.
    bits = hostile.Bits().u(8, 66).u(8, 0).u(8, 40).ue(0).ue(1).ue(1).u(1, 0)
    bits.u(23, 0).u(1, 1).u(23, int("1000000000000" + "1110" + "000000", 2))
    bits.se(100).ue(0).ue(0).u(1, 0).ue(3).ue(3).u(1, 1).u(1, 1).u(1, 0).u(1, 0)
    nal = b"\x67" + bits.rbsp()
    assert sps_size("h264", nal) == (64, 64) and sps_size("h264", nal, unescape=False) == (205584, 608)
    with pytest.raises(DecodeError, match="SPS is 205584x608"):
        VideoDecoder(parse_init(init_segment(64, 64, parameter_set=nal)))
    # And in a frame: FFmpeg retries "with the complete NAL" there too.
    decoder = VideoDecoder(parse_init(init_segment(64, 64)))
    assert decoder.decode(parse(frame("cam1", 1, hostile.annex_b(nal, hostile.pps(), hostile.idr_slice(16))))) == []
    assert "SPS is 205584x608" in decoder.last_error
    # An avcC that is not a record is read as Annex B, by FFmpeg and here.
    with pytest.raises(DecodeError, match="SPS is 16000x16000"):
        VideoDecoder(parse_init(init_segment(64, 64, config=hostile.annex_b(sps(1000, 1000), hostile.pps()))))


def test_a_frame_of_more_than_32_sps_is_refused_and_long_codes_read_fast():
    pytest.importorskip("av")
    import time

    from camflow_client.decode import VideoDecoder
    from camflow_client.h26x import sps_size
    # A High profile SPS whose 8 scaling lists hold long Exp-Golomb codes (31 bits, with no run of 16
    # zeros that would need an emulation prevention byte): 4096 of them in a 3.6 MB frame took 6.5 s to
    # read bit by bit.
    bits = hostile.Bits().u(8, 100).u(8, 0).u(8, 40).ue(0).ue(1).ue(0).ue(0).u(1, 0).u(1, 1)
    for index in range(8):
        bits.u(1, 1)
        for _ in range(16 if index < 6 else 64):
            bits.se(-32767)
    bits.ue(0).ue(2).ue(0).u(1, 0).ue(3).ue(3).u(1, 1).u(1, 1).u(1, 0).u(1, 0)
    slow = b"\x67" + bits.rbsp()
    assert b"\0\0\3" not in slow
    started = time.process_time()
    assert sps_size("h264", slow) == (64, 64)
    decoder = VideoDecoder(parse_init(init_segment(64, 64)))
    assert decoder.decode(parse(frame("cam1", 1, hostile.annex_b(*[slow] * 4096)))) == []
    assert "more than 32 SPS" in decoder.last_error
    assert time.process_time() - started < 2, "32 of them read, not 4096"


def test_frames_the_decoder_holds_back_do_not_keep_their_payload():
    pytest.importorskip("av")
    from camflow_client.decode import VideoDecoder
    # The decoder holds 15 pictures back (as for B-frames); each frame carries 1 MB of filler data.
    # Their messages were kept whole until the pictures came out: 16 of 20 MB held 620 MB, now 281.
    parameter_set = hostile.delayed_sps(4, 4)
    decoder = VideoDecoder(parse_init(init_segment(64, 64, parameter_set=parameter_set)))
    payload = hostile.annex_b(parameter_set, hostile.pps(), hostile.idr_slice(16), b"\x0c" + b"\xff" * (1 << 20))
    pictures = [len(decoder.decode(parse(frame("cam1", index, payload, pts=index, dts=index)))) for index in range(16)]
    assert pictures == [0] * 15 + [1]
    assert len(decoder._pending) == 15
    assert all(not hasattr(held, "payload") for held in decoder._pending.values())
    assert [(p.pts, p.sequence, p.keyframe) for p in decoder.flush()][:2] == [(1 / 90000, 1, True), (2 / 90000, 2, True)]


def test_h264_sps_fields_are_read_as_ffmpeg_reads_them_for_every_profile():
    pytest.importorskip("av")
    from camflow_client.decode import VideoDecoder
    from camflow_client.h26x import sps_size

    def high_form(profile, width_mbs):
        # Monochrome, 8 bits, POC type 0, 2 reference frames: read without the chroma and bit depth
        # fields (as for a Baseline SPS) the same bits say 16x32.
        bits = hostile.Bits().u(8, profile).u(8, 0).u(8, 40).ue(0).ue(0).ue(0).ue(0).u(1, 0).u(1, 0)
        bits.ue(0).ue(0).ue(0).ue(2).u(1, 0).ue(width_mbs - 1).ue(width_mbs - 1).u(1, 1).u(1, 1).u(1, 0).u(1, 0)
        return b"\x67" + bits.rbsp()

    # FFmpeg reads profile 144 (the old High 4:4:4) with those fields: it decoded 2000x2000 from this.
    assert sps_size("h264", high_form(144, 125)) == (2000, 2000)
    decoder = VideoDecoder(parse_init(init_segment(64, 64)))
    assert decoder.decode(parse(frame("cam1", 1, hostile.annex_b(high_form(144, 1000), hostile.pps())))) == []
    assert "SPS is 16000x16000" in decoder.last_error
    # Profiles the standard added later, which FFmpeg reads without them: both ways, the larger counts.
    assert sps_size("h264", high_form(139, 1000)) == (16000, 16000)


def _hevc_sps(width, height):
    bits = hostile.Bits().u(4, 0).u(3, 0).u(1, 1).u(96, 0).ue(0).ue(1).ue(width).ue(height)
    return bytes([33 << 1, 1]) + bits.rbsp()


@pytest.mark.parametrize("codec,config", [
    # hvcC whose first byte is 2: FFmpeg reads it as Annex B.
    ("hevc", b"\x02" + bytes(22) + hostile.annex_b(_hevc_sps(16000, 16000))),
    # An SPS in the hvcC's VPS array: FFmpeg goes by the unit's own type.
    ("hevc", bytes([1]) + bytes(20) + bytes([0xF3, 1, 32, 0, 1]) + len(_hevc_sps(16000, 16000)).to_bytes(2, "big")
     + _hevc_sps(16000, 16000)),
    # An SPS in the avcC's PPS list (FFmpeg decoded a 3200x3200 picture from one).
    ("h264", bytes([1, 66, 0xC0, 40, 0xFF, 0xE0, 1]) + len(sps(1000, 1000)).to_bytes(2, "big") + sps(1000, 1000)),
    # An SPS behind a start code inside the avcC's one SPS entry (a filler unit).
    ("h264", bytes([1, 66, 0xC0, 40, 0xFF, 0xE1]) + (3 + 4 + len(sps(1000, 1000))).to_bytes(2, "big") + b"\x0c\xff\xff"
     + hostile.annex_b(sps(1000, 1000)) + b"\x00"),
], ids=["hvcc-read-as-annex-b", "sps-in-vps-array", "sps-in-pps-list", "sps-behind-a-start-code"])
def test_every_sps_ffmpeg_would_read_in_a_decoder_configuration_is_checked(codec, config):
    pytest.importorskip("av")
    from camflow_client.decode import VideoDecoder
    from camflow_client.mp4 import InitSegment, Track
    track = Track(track_id=1, handler="vide", timescale=90000, sample_entry="hvc1" if codec == "hevc" else "avc1",
                  width=64, height=64, config=config)
    with pytest.raises(DecodeError, match="SPS is 16000x16000"):
        VideoDecoder(InitSegment(b"", [track]))


def test_hevc_sps_sizes_are_read_and_checked():
    from camflow_client.h26x import sps_size
    bits = hostile.Bits().u(4, 0).u(3, 0).u(1, 1).u(96, 0).ue(0).ue(1).ue(16000).ue(16000)
    assert sps_size("hevc", bytes([33 << 1, 1]) + bits.rbsp()) == (16000, 16000)
    with pytest.raises(DecodeError, match="ends early"):
        sps_size("hevc", bytes([33 << 1, 1]) + b"\x01\x02")


def decoded(messages, **limits):
    """(stream, width, height) of what Subscriber.frames decodes of ``messages``, up to the picture of
    the stream "end" that follows them."""
    ending = [message("end", "init", 1, init_segment(16, 16)), frame("end", 2, keyframe(16, 16))]
    with Publisher() as publisher, Subscriber(publisher.endpoint, idle_timeout=10) as subscriber:
        publisher.wait_for_subscriber()
        for frames in messages + ending:
            publisher.send(frames)
        out = []
        for picture in subscriber.frames(**limits):
            if picture.stream == "end":
                return out
            out.append((picture.stream, picture.width, picture.height))
    raise AssertionError("the end stream's picture did not come")


def test_picture_limits_are_configurable_in_frames():
    pytest.importorskip("av")
    limits = {"max_width": 64, "max_height": 64, "max_pixels": 64 * 64}
    assert decoded([message("cam1", "init", 1, init_segment(128, 128)), frame("cam1", 2, keyframe(128, 128))],
                   **limits) == [], "the init segment itself is over the limit"
    assert decoded([message("cam1", "init", 1, init_segment(64, 64)), frame("cam1", 2, keyframe(128, 128)),
                    frame("cam1", 3, keyframe(64, 64))], **limits) == [("cam1", 64, 64)]
    assert decoded([message("cam1", "init", 1, init_segment(64, 64)), frame("cam1", 2, keyframe(128, 128))]) \
        == [("cam1", 128, 128)], "within the default limits"


def test_the_decoder_refuses_a_picture_over_the_limit_even_past_the_sps_check():
    pytest.importorskip("av")
    from camflow_client.decode import VideoDecoder
    decoder = VideoDecoder(parse_init(init_segment(64, 64)), max_width=64, max_height=64, max_pixels=64 * 64)
    decoder._check_sps = lambda *args, **kwargs: None  # as if an SPS slipped past the reading of it
    assert decoder.decode(parse(frame("cam1", 1, keyframe(256, 256)))) == []
    assert decoder.rejected == 1


def test_decoders_open_at_once_are_bounded_and_a_closed_one_resumes_at_a_keyframe():
    pytest.importorskip("av")
    from camflow_client.subscriber import StreamDecoders
    decoders = StreamDecoders(None, "bgr24", False, max_decoders=2)
    assert StreamDecoders.MAX_DECODERS == 16
    for name in ("cam1", "cam2", "cam3"):
        decoders.take(parse(message(name, "init", 1, init_segment(64, 64))))
        assert len(decoders.take(parse(frame(name, 2, keyframe(64, 64))))) == 1
    assert decoders.closed == 1, "cam1's decoder was closed to decode cam3"
    assert decoders._decoders["cam1"][1]._context is None
    assert decoders.take(parse(frame("cam1", 3, keyframe(64, 64), keyframe=False))) == [], "it waits for a keyframe"
    assert len(decoders.take(parse(frame("cam1", 4, keyframe(64, 64))))) == 1
    assert decoders.closed == 2 and decoders._decoders["cam2"][1]._context is None


@pytest.mark.parametrize("case", ["header", "save-start-codes", "sps-bomb"])
def test_hostile_messages_leave_the_subscriber_process_small(case):
    pytest.importorskip("av")
    # Before the limits: 424, 479 and 619 MB; with them, what the process holds anyway (~40-85 MB).
    result = hostile.measure(case)
    assert result["hwm_mb"] < 200, result


# Item: library errors become the client's own.

def test_snapshot_of_a_wide_stream_scales_to_width_16(tmp_path):
    pytest.importorskip("av")
    out = tmp_path / "wide.jpg"
    with Publisher() as publisher:
        child = client("snapshot", publisher.endpoint, "--stream", "cam1", "--out", str(out), "--width", "16",
                       "--idle-timeout", "10")
        publisher.wait_for_subscriber()
        publisher.send(message("cam1", "init", 1, init_segment(4096, 16)))
        publisher.send(frame("cam1", 2, keyframe(4096, 16)))
        _, stderr = child.communicate(timeout=60)
    assert child.returncode == 0 and "Traceback" not in stderr, stderr
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height", "-of",
                            "csv=p=0", str(out)], capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "mjpeg,16,2"


def test_snapshot_refuses_a_scale_over_the_limits_with_a_clear_error(tmp_path):
    pytest.importorskip("av")
    out = tmp_path / "tall.jpg"
    with Publisher() as publisher:
        # 16 x 4096 at 7680 wide would be 7680 x 1966080: 45 GB of pixels.
        child = client("snapshot", publisher.endpoint, "--stream", "cam1", "--out", str(out), "--width", "7680",
                       "--idle-timeout", "10")
        publisher.wait_for_subscriber()
        publisher.send(message("cam1", "init", 1, init_segment(16, 4096)))
        publisher.send(frame("cam1", 2, keyframe(16, 4096)))
        _, stderr = child.communicate(timeout=60)
    assert child.returncode == 1 and "Traceback" not in stderr, stderr
    assert "7680x1966080, more than 8192x8192" in stderr
    assert not out.exists()
    bad = subprocess.run([sys.executable, "-m", "camflow_client", "snapshot", "tcp://127.0.0.1:1", "--stream", "c",
                          "--out", str(out), "--width", "8"], capture_output=True, text=True)
    assert bad.returncode == 2 and "not from 16 to 7680" in bad.stderr


def test_library_errors_are_client_errors():
    pytest.importorskip("av")
    import numpy
    from camflow_client.decode import DecodedFrame, VideoDecoder, encode_jpeg, scale
    from camflow_client.mp4 import fragment
    gray = DecodedFrame("cam1", numpy.zeros((16, 16), numpy.uint8), 0.0, 0.0, True, 16, 16, 1)
    with pytest.raises(ClientError):
        encode_jpeg(gray)  # a ValueError from numpy's shape check in PyAV
    with pytest.raises(ClientError):
        scale(gray, 16)
    with pytest.raises(ClientError):
        fragment(1, 1 << 40, 0, [(b"", 0, 0, True)])  # struct.error
    with pytest.raises(ClientError):
        annex_b_to_length_prefixed(b"\0\0\0\1" + bytes(300), 1)  # OverflowError
    # A picture format PyAV does not know: the frame is refused, decode() does not raise.
    decoder = VideoDecoder(parse_init(init_segment(64, 64)), image_format="no-such-format")
    assert decoder.decode(parse(frame("cam1", 1, keyframe(64, 64)))) == []
    assert "no-such-format" in decoder.last_error
    # Header values a Frame made by hand may hold (as an exec node does) do not reach PyAV.
    decoder = VideoDecoder(parse_init(init_segment(64, 64)))
    made = parse(frame("cam1", 1, keyframe(64, 64)))
    made.header["timescale"] = 1 << 40  # PyAV: OverflowError
    assert len(decoder.decode(made)) == 1
    made.header["pts"] = "x"
    assert decoder.decode(made) == [] and "pts" in decoder.last_error
    # camflow's timescales go to 2^32 - 1, FFmpeg's time bases to 2^31 - 1; its options are C ints too.
    decoder = VideoDecoder(parse_init(init_segment(64, 64)), max_pixels=1 << 40)
    late = parse(frame("cam1", 1, keyframe(64, 64), timescale=(1 << 32) - 1, pts=(1 << 32) - 1))
    assert [p.pts for p in decoder.decode(late)] == [1.0]
    assert issubclass(MalformedMessage, ClientError) and issubclass(DecodeError, ClientError)
    assert issubclass(ClientError, ValueError)


# Item: everything printed is escaped.

def test_printable_escapes_control_characters_and_the_backslash_as_hex():
    assert printable("cam\x1b[2J\x07\x9b\n\\x1b") == "cam\\x1b[2J\\x07\\x9b\\x0a\\x5cx1b"
    assert printable("\u202ecam") == "\\u202ecam"
    assert printable("é" * 5, 3) == "ééé…"


def test_a_box_type_with_terminal_escapes_is_escaped_in_the_error():
    hostile_box = box(b"\x1b[2J", bytes(4))[:-2]  # declares more than is left
    with pytest.raises(MalformedMessage) as raised:
        parse_init(hostile_box)
    assert "\x1b" not in str(raised.value) and "'\\x1b[2J'" in str(raised.value)


def test_save_prints_a_hostile_init_segment_error_escaped(tmp_path):
    with Publisher() as publisher:
        child = client("save", publisher.endpoint, "--stream", "cam1", "--out", str(tmp_path / "x.mp4"),
                       "--idle-timeout", "10")
        publisher.wait_for_subscriber()
        publisher.send(message("cam1", "init", 1, box(b"\x1b]0;", bytes(4))[:-2]))
        _, stderr = child.communicate(timeout=60)
    assert child.returncode == 1
    assert "\x1b" not in stderr and "\\x1b]0;" in stderr, stderr


def test_tail_and_repr_print_nothing_unescaped():
    evil = "\x1b]0;owned\x07\x9b31m"
    hostile_message = message("cam1", "event", 1, topic=f"cam1/event{evil}".encode(), event="x",
                              fields={"note": evil, evil: 1})
    assert "\x1b" not in repr(parse(hostile_message)) and "\\x1b" in repr(parse(hostile_message))
    with Publisher() as publisher:
        child = client("tail", publisher.endpoint, "--stream", "cam1", "--count", "1", "--idle-timeout", "10")
        publisher.wait_for_subscriber()
        publisher.send(hostile_message)
        stdout, stderr = child.communicate(timeout=60)
    assert child.returncode == 0, stderr
    assert stdout.count("\n") == 1 and all(c.isprintable() for c in stdout.strip()), repr(stdout)
    assert "cam1/event\\x1b]0;owned\\x07\\x9b31m" in stdout


@pytest.mark.parametrize("name", ["cam\x1b[2J", "cam\n1", "cam\x9b1", "", "c" * 257, "é" * 129])
def test_stream_names_camflow_would_refuse_are_malformed(name):
    with pytest.raises(MalformedMessage, match="'stream' must be 1 to 256 bytes"):
        parse(message(name, "frame", 1))


def test_stream_names_camflow_accepts_are_accepted_and_printed_escaped():
    name = "cam\U0001F468\u200d\U0001F469 " + "é" * 100  # a zero-width joiner is no control character
    message_ = parse(message(name, "frame", 1))
    assert message_.stream == name
    assert "\\u200d" in printable(message_.stream) and "\u200d" not in printable(message_.stream)


# Further attacks.

def test_sequence_numbers_past_2_63_read_unsigned_and_wrap_without_a_restart():
    # camflow writes its unsigned 64-bit sequence as the signed bit pattern.
    assert parse(message("cam1", "frame", -1)).sequence == (1 << 64) - 1
    assert parse(message("cam1", "frame", -(1 << 63))).header["sequence"] == 1 << 63
    tracker = SequenceTracker()
    for sequence in ((1 << 63) - 1, 1 << 63, (1 << 64) - 2, (1 << 64) - 1, 0, 1):
        tracker.observe("cam1/frame", sequence)
    assert (tracker.lost, tracker.restarts) == ((1 << 63) - 3, 0)
    assert tracker.observe("cam1/frame", 0) == (0, True), "going back is still a restart"
    assert tracker.observe("cam1/frame", -1) == (0, True)


@pytest.mark.parametrize("field,value", [("timescale", 1 << 32), ("timescale", -1), ("width", 65536),
                                         ("height", -1), ("track", 1 << 32), ("duration", (1 << 40) + 1)])
def test_header_numbers_outside_camflows_ranges_are_malformed(field, value):
    with pytest.raises(MalformedMessage, match=f"'{field}' is {value}, outside"):
        parse(message("cam1", "frame", 1, **{field: value}))


def test_headers_nested_deeper_than_the_limit_are_malformed():
    deep = {}
    for _ in range(40):
        deep = {"a": deep}
    with pytest.raises(MalformedMessage, match="nests deeper than 32"):
        parse(message("cam1", "event", 1, event="x", fields=deep))
    parse(message("cam1", "event", 1, event="x", fields={"a": [[[1]]]}))


def test_multipart_messages_with_parts_missing_or_extra_are_skipped_and_counted():
    with Publisher() as publisher, Subscriber(publisher.endpoint, idle_timeout=10) as subscriber:
        got = received(publisher, subscriber,
                       message("cam1", "event", 1, event="a")[:2],
                       message("cam1", "event", 2, event="b") + [b"extra"] * 1000,
                       [b"cam1/" + b"t" * 2000] + message("cam1", "event", 3, event="c")[1:],
                       message("cam1", "event", 4, event="ok"))
        assert [m.header["event"] for m in got] == ["ok"]
        assert subscriber.malformed == 3


def test_the_asyncio_subscriber_keeps_the_same_limits():
    import asyncio

    from camflow_client import AsyncSubscriber

    big = message("cam1", "event", 1, event="x", fields={"a": [{}] * 400_000})
    with Publisher() as publisher:
        async def run():
            async with AsyncSubscriber(publisher.endpoint, idle_timeout=10) as subscriber:
                await asyncio.to_thread(publisher.wait_for_subscriber)
                for frames in (big, message("cam1", "event", 2, event="b") + [b"extra"] * 10,
                               message("cam1", "event", 3, event="ok"), END):
                    publisher.send(frames)
                got = []
                async for received_message in subscriber:
                    if received_message.header.get("event") == "end":
                        return got, subscriber.malformed
                    got.append(received_message.header["event"])
        assert asyncio.run(run()) == (["ok"], 2)
