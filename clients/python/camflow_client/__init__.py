"""camflow's ZeroMQ topics from Python: typed messages, gaps, decoded frames,
and the framing of camflow's ``exec`` node (:mod:`camflow_client.node`).

    from camflow_client import Subscriber
    for frame in Subscriber("tcp://127.0.0.1:5555", streams=["cam1"]).frames():
        cv2.imshow("cam1", frame.image)
"""
from .messages import (Clip, ClientError, DecodeError, Event, Fragment, Frame, Init, Keyframe, MalformedMessage, Message,
                       Stats, parse)


def __getattr__(name):
    # The subscribers need pyzmq; an exec node (camflow_client.node) needs nothing beyond Python.
    if name in ("AsyncSubscriber", "Curve", "Subscriber"):
        from . import subscriber

        return getattr(subscriber, name)
    raise AttributeError(f"module 'camflow_client' has no attribute {name!r}")


__version__ = "0.1.0"
__all__ = ["AsyncSubscriber", "Clip", "ClientError", "Curve", "DecodeError", "Event", "Fragment", "Frame", "Init", "Keyframe", "MalformedMessage",
           "Message", "Stats", "Subscriber", "parse"]
