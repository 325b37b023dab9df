#!/usr/bin/env python3
"""Children for the exec node's tests, speaking camflow's framing.

    exec_children.py echo-no-ack   echoes every packet back and never acknowledges
    exec_children.py print-env     writes its environment to stderr, then acknowledges and drops packets
    exec_children.py stubborn TAG  ignores SIGTERM, starts a grandchild 'sleep TAG', reads forever
"""
import os
import signal
import struct
import subprocess
import sys


def read_exact(stream, count):
    data = b""
    while len(data) < count:
        chunk = stream.read(count - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def frames():
    stdin = sys.stdin.buffer
    while True:
        head = read_exact(stdin, 4)
        if head is None:
            return
        header = read_exact(stdin, struct.unpack(">I", head)[0])
        size = struct.unpack(">I", read_exact(stdin, 4))[0]
        yield header, read_exact(stdin, size)


def write(header, payload=b""):
    out = sys.stdout.buffer
    out.write(struct.pack(">I", len(header)) + header + struct.pack(">I", len(payload)) + payload)
    out.flush()


mode = sys.argv[1]
if mode == "echo-no-ack":
    for header, payload in frames():
        write(header, payload)
elif mode == "print-env":
    for name, value in sorted(os.environ.items()):
        print(f"env {name}={value}", file=sys.stderr, flush=True)
    import json
    for header, _ in frames():
        write(json.dumps({"ack": json.loads(header)["ack_sequence"]}).encode())
elif mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    subprocess.Popen(["sleep", sys.argv[2]])
    print("stubborn child started", file=sys.stderr, flush=True)
    for _ in frames():
        pass
    signal.pause()
