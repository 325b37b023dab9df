#!/usr/bin/env python3
"""Show a camera's frames in an OpenCV window, or, with --jpegs DIR, save a JPEG a second.

    python show_frames.py tcp://127.0.0.1:5555 cam1
    python show_frames.py tcp://127.0.0.1:5555 cam1 --jpegs /tmp/cam1
"""
import argparse
import os

from camflow_client import Subscriber
from camflow_client.decode import encode_jpeg

parser = argparse.ArgumentParser()
parser.add_argument("endpoint")
parser.add_argument("stream")
parser.add_argument("--jpegs", help="save one JPEG a second here instead of opening a window")
args = parser.parse_args()

with Subscriber(args.endpoint, streams=[args.stream]) as subscriber:
    if args.jpegs:
        os.makedirs(args.jpegs, exist_ok=True)
        last = None
        for frame in subscriber.frames(args.stream):
            if last is None or frame.pts - last >= 1:
                last = frame.pts
                with open(os.path.join(args.jpegs, f"{frame.pts:010.3f}.jpg"), "wb") as out:
                    out.write(encode_jpeg(frame))
    else:
        import cv2  # pip install opencv-python

        for frame in subscriber.frames(args.stream):
            cv2.imshow(args.stream, frame.image)  # bgr24, as OpenCV expects
            if cv2.waitKey(1) == 27:  # Esc
                break
