"""python -m camflow_client tail / save / snapshot, as a user runs them."""
import subprocess
import sys

import pytest

from conftest import ffprobe_video_frames


def client(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "camflow_client", *args], capture_output=True, text=True, timeout=timeout)


def test_tail_prints_a_line_per_message(publish):
    publisher = publish(realtime=True, loop=True)
    result = client("tail", publisher.endpoint, "--stream", "cam1", "--count", "20")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 20
    assert all(" cam1/" in line for line in lines)


def test_save_remuxes_to_an_mp4_that_decodes(publish, tmp_path):
    publisher = publish(realtime=True, loop=True)
    out = tmp_path / "cam1.mp4"
    result = client("save", publisher.endpoint, "--stream", "cam1", "--out", str(out), "--frames", "100")
    assert result.returncode == 0, result.stderr
    frames, width, height = ffprobe_video_frames(out)
    assert (frames, width, height) == (100, 640, 360)
    decoded = subprocess.run(["ffmpeg", "-v", "error", "-i", str(out), "-f", "null", "-"], capture_output=True, text=True)
    assert decoded.returncode == 0 and decoded.stderr == "", decoded.stderr


def test_snapshot_writes_a_jpeg_of_the_next_keyframe(publish, tmp_path):
    pytest.importorskip("av")
    publisher = publish(realtime=True, loop=True)
    out = tmp_path / "cam1.jpg"
    result = client("snapshot", publisher.endpoint, "--stream", "cam1", "--out", str(out), "--width", "320")
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:2] == b"\xff\xd8"
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0",
                            str(out)], capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "mjpeg,320,180"
