"""A consumer slower than its publishers: libzmq 4.3.4/4.3.5 abort the whole process
(`Assertion failed: !_io_error`) when a connection whose input libzmq paused (its queue
full) loses its peer while a heartbeat is due. The subscriber's process survives two
flooding publishers that leave, drops (and counts) what its queue has no room for, and
still takes a later publisher's messages. It runs in a child process, so an abort fails
the test instead of ending pytest."""
import gc
import json
import subprocess
import sys
import threading
import time

import pytest
import zmq

from camflow_client import Subscriber
from conftest import free_port
from hostile import END, Publisher, message

# The child: a consumer that sleeps a millisecond on each flood message, until the first message
# of another stream; then it closes and reports.
BLOCKING = """
import json, resource, sys, threading, time
from camflow_client import Subscriber
subscriber = Subscriber(sys.argv[1])
floods = 0
for received in subscriber:
    if received.stream != "flood":
        break
    floods += 1
    time.sleep(0.001)
started = time.monotonic()
subscriber.close()
print(json.dumps({"floods": floods, "dropped": subscriber.dropped, "stream": received.stream,
                  "close_s": time.monotonic() - started, "threads": threading.active_count(),
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))
"""

# The same on asyncio, the consumer blocking the event loop as work done in it does.
ASYNCIO = """
import asyncio, json, resource, sys, threading, time
from camflow_client import AsyncSubscriber
async def main():
    floods = 0
    subscriber = AsyncSubscriber(sys.argv[1])
    async for received in subscriber:
        if received.stream != "flood":
            break
        floods += 1
        time.sleep(0.001)
    started = time.monotonic()
    subscriber.close()
    return {"floods": floods, "dropped": subscriber.dropped, "stream": received.stream,
            "close_s": time.monotonic() - started, "threads": threading.active_count()}
out = asyncio.run(main())
out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print(json.dumps(out))
"""

FLOOD_SECONDS = 1.0


def publisher(endpoint, child):
    """A PUB bound on ``endpoint`` that heartbeats every 10 ms (its PINGs lie among the messages the
    subscriber has not read yet) and queues without limit, once its subscriber has subscribed;
    None if the subscriber's process has ended."""
    context = zmq.Context()
    socket = context.socket(zmq.XPUB)
    socket.setsockopt(zmq.SNDHWM, 0)
    socket.setsockopt(zmq.HEARTBEAT_IVL, 10)
    socket.setsockopt(zmq.LINGER, 0)
    socket.bind(endpoint)
    deadline = time.monotonic() + 20
    while not socket.poll(100):
        if child.poll() is not None or time.monotonic() > deadline:
            socket.close()
            context.term()
            assert child.poll() is not None, "the subscriber did not subscribe within 20 s"
            return None
    socket.recv()
    return context, socket


def flood(endpoint, seconds, child):
    """Valid camflow messages as fast as they go for ``seconds``, then gone at once (no linger)."""
    opened = publisher(endpoint, child)
    if opened is None:
        return 0
    context, socket = opened
    payload = b"x" * 100
    sent = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        socket.send_multipart(message("flood", "event", sent, payload, event="tick"))
        sent += 1
    socket.close(linger=0)
    context.term()
    return sent


def greet(endpoint, child):
    """A publisher of another stream that sends until the child has a message (and exits), for at
    most 30 s: the child's queue may still be full of the floods' messages when its first comes.
    How many it sent."""
    opened = publisher(endpoint, child)
    if opened is None:
        return 0
    context, socket = opened
    deadline = time.monotonic() + 30
    sequence = 0
    while child.poll() is None and time.monotonic() < deadline:
        socket.send_multipart(message("cam1", "event", sequence, event="hello"))
        sequence += 1
        try:
            child.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            pass
    socket.close(linger=0)
    context.term()
    return sequence


@pytest.mark.parametrize("script", [BLOCKING, ASYNCIO], ids=["blocking", "asyncio"])
def test_a_slow_consumer_survives_flooding_publishers_that_leave(script, tmp_path):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    # Its warnings (sequence gaps) go to a file: a pipe nobody reads would stop it.
    errors = tmp_path / "stderr"
    with errors.open("wb") as stderr:
        child = subprocess.Popen([sys.executable, "-c", script, endpoint], stdout=subprocess.PIPE, stderr=stderr,
                                 text=True)
    try:
        sent = [flood(endpoint, FLOOD_SECONDS, child), flood(endpoint, FLOOD_SECONDS, child)]
        greetings = greet(endpoint, child)
        out, _ = child.communicate(timeout=30)
    finally:
        child.kill()
        child.wait()
    err = errors.read_text(errors="replace")
    assert child.returncode == 0, f"the subscriber's process ended with {child.returncode}:\n{err[-2000:]}"
    report = json.loads(out)
    assert report["stream"] == "cam1", "a later publisher's messages still arrive"
    assert report["dropped"] > 0 and report["floods"] > 0
    assert report["floods"] + report["dropped"] <= sum(sent) + greetings
    assert report["close_s"] < 1 and report["threads"] == 1, "close() ends the reader thread at once"
    print(f"sent {sent}, consumed {report['floods']}, dropped {report['dropped']}, "
          f"peak RSS {report['maxrss_mb']} MB")


def readers():
    return [thread for thread in threading.enumerate() if thread.name == "camflow-client-reader"]


def test_the_reader_thread_ends_on_close_and_when_an_unclosed_subscriber_is_dropped():
    with Publisher() as publisher:
        subscriber = Subscriber(publisher.endpoint, idle_timeout=10)
        assert len(readers()) == 1
        publisher.wait_for_subscriber()
        publisher.send(END)
        assert next(iter(subscriber)).header["event"] == "end"
        subscriber.close()
        subscriber.close()
        assert readers() == []
        with pytest.raises(zmq.ZMQError):
            subscriber.recv(0)
        dropped = Subscriber(publisher.endpoint)
        thread = dropped._reader.thread
        del dropped
        gc.collect()
        thread.join(timeout=10)
        assert not thread.is_alive()
    with pytest.raises(ValueError, match="receive_buffer"):
        Subscriber("tcp://127.0.0.1:1", receive_buffer=-1)
