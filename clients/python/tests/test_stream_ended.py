"""The stream-ended event: the decoder gives up the pictures it held back for B-frames, without waiting for a timeout."""
import pytest

from camflow_client import Subscriber
from camflow_client.subscriber import StreamDecoders

from conftest import FIXTURES, ffprobe_video_frames

pytest.importorskip("av", reason="decoding needs the [decode] extra")


def test_stream_ended_flushes_the_pictures_held_back_for_b_frames(publish):
    fixture = "h264-high-bframes.mp4"
    expected, _, _ = ffprobe_video_frames(FIXTURES / fixture)
    publisher = publish(fixture=fixture, wait_for_subscribers=1)
    decoders = StreamDecoders("cam1", "bgr24", False)
    before, at_end, ended = [], [], None
    # No idle timeout: without the event this would wait for ever (the test's own timeout ends it).
    with Subscriber(publisher.endpoint, streams=["cam1"]) as subscriber:
        while ended is None:
            message = subscriber.recv(timeout=30)
            assert message is not None, "no stream-ended event within 30 s of the last message"
            if message.kind == "event" and message.name == "stream-ended":
                ended = message
                at_end = decoders.take(message)
            else:
                before.extend(decoders.take(message))
    assert publisher.wait() == 0
    assert ended.stream == "cam1" and ended.fields.get("reason") == "end of input"
    assert at_end, "the pictures delayed for B-frames come out on stream-ended"
    assert len(before) + len(at_end) == expected
    assert decoders.flush() == [], "nothing is left for the end of iteration"
