"""Subscriber.frames against the real camflow binary: every frame, late joins, a publisher restart."""
import asyncio
import time

import pytest

from camflow_client import AsyncSubscriber, Frame, Init, Subscriber

from conftest import FIXTURES, free_port, ffprobe_video_frames

pytest.importorskip("av", reason="decoding needs the [decode] extra")


def test_frames_yields_every_published_frame_at_its_size(publish):
    expected, width, height = ffprobe_video_frames(FIXTURES / "h264-main-aac.mp4")
    publisher = publish(wait_for_subscribers=1)
    with Subscriber(publisher.endpoint, streams=["cam1"], idle_timeout=3) as subscriber:
        frames = list(subscriber.frames("cam1"))
    assert publisher.wait() == 0
    assert len(frames) == expected
    assert all(f.image.shape == (height, width, 3) for f in frames)
    assert frames[0].keyframe
    assert [f.pts for f in frames] == sorted(f.pts for f in frames), "presentation order"
    assert subscriber.sequences.lost == 0
    assert "cam1" in subscriber.inits


def test_typed_messages_carry_their_header_as_attributes(publish):
    publisher = publish(wait_for_subscribers=1)
    kinds = set()
    with Subscriber(publisher.endpoint, streams=["cam1"], idle_timeout=3) as subscriber:
        for message in subscriber:
            kinds.add(type(message).__name__)
            if isinstance(message, Frame) and message.is_video:
                assert message.codec.startswith("avc1") and message.timescale == 12800 and message.width == 640
            if isinstance(message, Init):
                assert message.payload[4:8] == b"ftyp"
    assert {"Init", "Frame", "Keyframe"} <= kinds, kinds


def test_a_late_subscriber_starts_at_the_next_keyframe(publish):
    publisher = publish(realtime=True, loop=True)
    # Join well after the init segment went out: the latch sends it again.
    with Subscriber(publisher.endpoint, streams=["cam1"], kinds=["frame"], idle_timeout=10) as watcher:
        assert sum(1 for _, m in zip(range(60), watcher) if m.is_video) > 0
    with Subscriber(publisher.endpoint, streams=["cam1"], idle_timeout=10) as late:
        frames = late.frames("cam1")
        first = next(frames, None)
        assert first is not None, f"no frame within 10 s; inits {list(late.inits)}, lost {late.sequences.lost}"
        assert first.keyframe, f"decoding starts at a keyframe, not {first.pts} (sequence {first.sequence})"
        assert first.image.shape == (360, 640, 3)
        assert "cam1" in late.inits, "the init segment came through the latch"


def test_a_publisher_killed_and_restarted_resumes_at_the_next_keyframe(publish):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    first = publish(realtime=True, loop=True, endpoint=endpoint)
    before, after = [], []
    with Subscriber(endpoint, streams=["cam1"], idle_timeout=20) as subscriber:
        for frame in subscriber.frames("cam1"):
            # Frames decoded once the subscriber has seen the sequence numbers start over.
            (after if subscriber.sequences.restarts or subscriber.sequences.lost else before).append(frame)
            if len(before) == 30 and first.process.poll() is None:
                first.kill()
                publish(realtime=True, loop=True, endpoint=endpoint)
            if len(after) >= 30:
                break
    assert len(before) >= 30 and len(after) >= 30
    assert after[0].keyframe, "after the restart, frames resume at a keyframe"
    assert subscriber.sequences.restarts + subscriber.sequences.lost >= 1, "the restart was seen in the sequence numbers"


def test_keyframes_only_decodes_just_the_keyframes(publish):
    publisher = publish(wait_for_subscribers=1)
    with Subscriber(publisher.endpoint, streams=["cam1"], idle_timeout=3) as subscriber:
        frames = list(subscriber.frames("cam1", keyframes_only=True))
    assert len(frames) == 3, "the 6 s fixture has a keyframe every 2 s"
    assert all(f.keyframe for f in frames)


def test_the_asyncio_subscriber_decodes_too(publish):
    publisher = publish(wait_for_subscribers=1)

    async def run():
        async with AsyncSubscriber(publisher.endpoint, streams=["cam1"], idle_timeout=3) as subscriber:
            return [frame async for frame in subscriber.frames("cam1")]

    frames = asyncio.run(run())
    assert len(frames) == ffprobe_video_frames(FIXTURES / "h264-main-aac.mp4")[0]


def test_through_the_broker_a_second_subscriber_of_a_stream_gets_its_init_segment_too(publish, tmp_path):
    """camflow broker forwards every subscription upstream, so the publisher's latch serves each newcomer."""
    import re
    import subprocess

    from conftest import camflow_binary

    front, back = free_port(), free_port()
    broker = subprocess.Popen([camflow_binary(), "broker", "--frontend", f"tcp://127.0.0.1:{front}",
                               "--backend", f"tcp://127.0.0.1:{back}"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert re.match(rb"frontend: ", broker.stdout.readline())
        # Played once (no loop, which would send the init segment again): only the latch can serve the second.
        publish(realtime=True, endpoint=f"tcp://127.0.0.1:{front}", connect=True)
        # The first stays subscribed while the second joins: the broker must still tell the publisher.
        with Subscriber(f"tcp://127.0.0.1:{back}", streams=["cam1"], kinds=["init"], idle_timeout=10) as first:
            assert isinstance(next(iter(first), None), Init)
            with Subscriber(f"tcp://127.0.0.1:{back}", streams=["cam1"], kinds=["init"], idle_timeout=10) as second:
                assert isinstance(next(iter(second), None), Init), "the second subscriber gets the init segment at once"
    finally:
        broker.kill()
        broker.wait()
