"""Fixtures: the real camflow binary publishing the repository's MP4 fixtures over ZeroMQ."""
import os
import pathlib
import re
import signal
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "Tests" / "Fixtures"


def camflow_binary():
    path = os.environ.get("CAMFLOW_BINARY") or str(ROOT / ".build" / "debug" / "camflow")
    if not os.access(path, os.X_OK):
        pytest.fail(f"no camflow binary at {path}: run `make build` (or set CAMFLOW_BINARY)")
    return path


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Publisher:
    """`camflow run` of file-replay > mp4-parse (frames) > keyframes > zmq-publish."""

    def __init__(self, fixture="h264-main-aac.mp4", endpoint="tcp://127.0.0.1:*", realtime=False, loop=False,
                 wait_for_subscribers=0, stream="cam1", connect=False):
        self.directory = tempfile.mkdtemp(prefix="camflow-client-")
        pipeline = pathlib.Path(self.directory) / "publish.yaml"
        pipeline.write_text(f"""
nodes:
  {stream}: {{ type: file-replay, path: "{FIXTURES / fixture}", realtime: {str(realtime).lower()}, loop: {str(loop).lower()} }}
  parse: {{ type: mp4-parse, inputs: [{stream}], frames: true }}
  keyframes: {{ type: keyframes, inputs: [parse] }}
  stats: {{ type: stats, inputs: [keyframes], interval: 1s }}
  publish:
    type: zmq-publish
    inputs: [keyframes, stats]
    endpoint: "{endpoint}"
    connect: {str(connect).lower()}
    wait-for-subscribers: {wait_for_subscribers}
    sndhwm: 100000
""")
        self.stderr_path = pathlib.Path(self.directory) / "stderr"
        self.process = subprocess.Popen([camflow_binary(), "run", str(pipeline), "--status-interval", "0"],
                                        stdout=subprocess.DEVNULL, stderr=open(self.stderr_path, "wb"))
        self.endpoint = self._endpoint()

    def _endpoint(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"publishing on (tcp://[0-9.]+:[0-9]+)", self.stderr_path.read_text(errors="replace"))
            if found:
                return found.group(1)
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"camflow did not start publishing:\n{self.stderr_path.read_text(errors='replace')}")

    def kill(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def wait(self, timeout=60):
        return self.process.wait(timeout=timeout)


@pytest.fixture
def publish():
    started = []

    def start(**options):
        publisher = Publisher(**options)
        started.append(publisher)
        return publisher

    yield start
    for publisher in started:
        publisher.kill()


def ffprobe_video_frames(path):
    """How many video frames ffprobe decodes in a file, and the picture size."""
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                          "stream=nb_read_frames,width,height", "-of", "csv=p=0", str(path)],
                         check=True, capture_output=True, text=True).stdout.strip()
    width, height, frames = out.split(",")
    return int(frames), int(width), int(height)
