#!/usr/bin/env python3
"""An `exec` node in Python: passes init segments and keyframe frames, drops the rest.

    nodes:
      keyframes: { type: exec, inputs: [parse], command: [python3, clients/python/examples/keyframes_only.py] }

With CAMFLOW_EXIT_AFTER=N it exits after N packets, once (it leaves a marker
file named by CAMFLOW_MARKER): how the tests show that a child that dies is
restarted and loses nothing.
"""
import os
import sys

try:
    from camflow_client.node import emit, packets
except ImportError:  # run from a checkout without the package installed
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from camflow_client.node import emit, packets

exit_after = int(os.environ.get("CAMFLOW_EXIT_AFTER", "0"))
marker = os.environ.get("CAMFLOW_MARKER", "")
seen = 0
for header, payload in packets():
    seen += 1
    if exit_after and seen > exit_after and marker and not os.path.exists(marker):
        open(marker, "w").close()
        print(f"exiting on purpose after {exit_after} packets", file=sys.stderr)
        sys.exit(3)
    if header["kind"] == "init" or (header["kind"] == "frame" and header.get("keyframe")):
        # The packets keep their sequence numbers: they name the same frames downstream
        # (and across a restart of this child); a subscriber sees the dropped frames as gaps.
        emit(header, payload)
