#!/usr/bin/env python3
"""A ZeroMQ publisher that floods valid camflow messages, then leaves.

    zmq_flood.py ENDPOINT SECONDS

Connects a PUB socket to ENDPOINT and sends three-frame messages (topic,
JSON header, 100-byte payload) as fast as it can for SECONDS, with its own
heartbeat every 10 ms, so its PINGs lie among the messages a slow
subscriber has not read yet. Then it closes at once (no linger) and prints
`sent N`. This is what made libzmq abort a subscriber whose queue was full.
"""
import json
import sys
import time

import zmq

endpoint, seconds = sys.argv[1], float(sys.argv[2])
context = zmq.Context()
socket = context.socket(zmq.PUB)
socket.setsockopt(zmq.SNDHWM, 0)
socket.setsockopt(zmq.HEARTBEAT_IVL, 10)
socket.setsockopt(zmq.LINGER, 0)
socket.connect(endpoint)
payload = b"x" * 100
start = time.monotonic()
sent = 0
while time.monotonic() - start < seconds:
    header = json.dumps({"stream": "flood", "kind": "bytes", "sequence": sent}).encode()
    socket.send_multipart([b"flood", header, payload])
    sent += 1
socket.close(linger=0)
context.term()
print(f"sent {sent}", flush=True)
