#!/usr/bin/env python3
"""An `exec` node that decodes keyframes, scores them and publishes the score
back into the pipeline as an event, which zmq-publish or mqtt-publish then
send on: the shape of a detector written in Python.

    nodes:
      parse:  { type: mp4-parse, inputs: [camera], frames: true, emit: [init, frame] }
      detect: { type: exec, inputs: [parse], command: [.venv/bin/python, clients/python/examples/detect_and_publish.py] }
      publish: { type: zmq-publish, inputs: [detect], endpoint: "tcp://127.0.0.1:5555" }

The score here is the mean brightness change between keyframes (0 to 255):
put a real detector (OpenCV, a neural network) where `score` is computed.
"""
import os
import sys

try:
    from camflow_client.node import emit, packets
except ImportError:  # run from a checkout without the package installed
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from camflow_client.node import emit, packets
from camflow_client.decode import VideoDecoder
from camflow_client.messages import Frame, printable
from camflow_client.mp4 import parse_init

decoders, previous, sequences = {}, {}, {}
for header, payload in packets():
    stream = header.get("stream", "")
    if header["kind"] == "init":
        try:
            decoders[stream] = VideoDecoder(parse_init(payload), keyframes_only=True)
        except ValueError as error:  # no video, an init segment that does not parse, a picture over the limits
            print(f"{printable(stream)}: not decoded: {error}", file=sys.stderr)
            decoders.pop(stream, None)
    elif header["kind"] == "frame" and header.get("keyframe") and stream in decoders:
        # The exec framing carries the ZeroMQ header: it reads as a Frame message.
        for picture in decoders[stream].decode(Frame(f"{stream}/frame", header, payload)):
            mean = float(picture.image.mean())
            score = abs(mean - previous.get(stream, mean))
            previous[stream] = mean
            # Events are numbered on their own, so subscribers see no gaps where frames were not scored.
            sequences[stream] = sequences.get(stream, -1) + 1
            emit({"stream": stream, "kind": "event", "sequence": sequences[stream], "event": "detection",
                  "fields": {"score": round(score, 3), "brightness": round(mean, 3), "pts": picture.pts}})
