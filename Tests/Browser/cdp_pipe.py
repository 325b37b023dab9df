"""Debian's headless Chromium driven over the DevTools protocol on a pipe
(--remote-debugging-pipe: fd 3 in, fd 4 out, messages ended by NUL), so no
WebSocket library is needed. The one launcher and message loop shared by
the end-to-end tests' browser_check.py and `camflow bench latency`'s
latency_viewer.py; each adds its own pages on top.
"""

import json
import os
import select
import shutil
import subprocess
import tempfile
import time


class ChromiumPipe:
    """One headless Chromium process and its protocol pipe."""

    BASE_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
                 "--no-first-run", "--no-default-browser-check", "--autoplay-policy=no-user-gesture-required",
                 "--mute-audio", "--disable-extensions", "--allow-loopback-in-peer-connection"]

    def __init__(self, extra_args=(), profile_prefix="camflow-chromium-"):
        self.profile = tempfile.mkdtemp(prefix=profile_prefix)
        # Keep fds 3 and 4 taken first, so the child's 3 and 4 can be set
        # in preexec without clobbering a pipe end still to be copied.
        placeholders = [os.open(os.devnull, os.O_RDONLY) for _ in range(2)]
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()
        binary = shutil.which("chromium") or shutil.which("chromium-browser")
        if not binary:
            raise SystemExit("chromium is not installed (apt-get install chromium)")

        def wire_fds():
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.process = subprocess.Popen(
            [binary] + self.BASE_ARGS + ["--user-data-dir=" + self.profile] + list(extra_args) + ["about:blank"],
            pass_fds=(3, 4), preexec_fn=wire_fds, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        for fd in placeholders:
            os.close(fd)
        self.buffer = b""
        self.next_id = 0

    def write(self, message):
        """Sends one message without waiting for its reply."""
        os.write(self.to_chrome, json.dumps(message).encode() + b"\0")

    def call(self, method, params=None, session_id=None, timeout=30):
        """Sends a command and returns its result; messages read meanwhile go to on_event."""
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session_id:
            message["sessionId"] = session_id
        self.write(message)
        deadline = time.monotonic() + timeout
        while True:
            reply = self.read(deadline)
            if reply is None:
                raise SystemExit(f"chromium did not answer {method} within {timeout}s")
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise SystemExit(f"{method} failed: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.on_event(reply)

    def on_event(self, message):
        """An event read while waiting for a reply; dropped unless a subclass keeps it."""

    def read(self, deadline):
        """The next message, or None at the deadline."""
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.from_chrome], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.from_chrome, 1 << 20)
            if not chunk:
                raise SystemExit("chromium exited")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except SystemExit:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.profile, ignore_errors=True)
