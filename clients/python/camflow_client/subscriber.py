"""Subscribing to camflow's ZeroMQ topics: typed messages, gaps, decoded frames."""
from __future__ import annotations

import hashlib
import logging
import re
import socket as _socket
import threading
import time
import weakref
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import AsyncIterator, Iterable, Iterator

import zmq

from .messages import KINDS, MAX_HEADER, Frame, Init, MalformedMessage, Message, matches, parse, printable, topic_kind
from .mp4 import InitSegment, parse_init
from .sequence import SequenceTracker

log = logging.getLogger("camflow_client")


@dataclass
class Curve:
    """CURVE keys of a subscriber: the publisher's public key and this side's pair (Z85)."""

    server_key: str
    public_key: str
    secret_key: str

    @classmethod
    def from_keygen(cls, server_key: str, secret_key_file: str) -> "Curve":
        """Keys from the file `camflow keygen --out NAME` wrote (NAME, not NAME.pub)."""
        values = {}
        with open(secret_key_file, encoding="utf-8") as file:
            for line in file:
                found = re.match(r'\s*(public-key|secret-key)\s*=\s*"(.*)"\s*$', line)
                if found:
                    values[found.group(1)] = found.group(2)
        if "secret-key" not in values or "public-key" not in values:
            raise ValueError(f"{secret_key_file}: no public-key and secret-key lines (as camflow keygen writes them)")
        return cls(server_key, values["public-key"], values["secret-key"])


def subscriptions(streams: Iterable[str] | None, kinds: Iterable[str] | None) -> list[str]:
    """Topic prefixes for ``streams`` and ``kinds`` (the trailing slash keeps cam1 from matching cam10)."""
    streams = list(streams or [])
    kinds = list(kinds or [])
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown kinds {unknown}; camflow publishes {list(KINDS)}")
    topic_kinds = sorted({"event" if k == "clip" else k for k in kinds})
    if streams and topic_kinds:
        return [f"{s}/{k}" for s in streams for k in topic_kinds]
    if streams:
        return [f"{s}/" for s in streams]
    return [""]


def _read(socket: zmq.Socket) -> tuple[list, int] | None:
    """The next message waiting on ``socket``, None if there is none: its first three parts
    (zmq.Frame) without a copy (a message of a million parts, or a fourth of 200 MB, costs
    nothing more than libzmq's own buffer), and how many parts it had."""
    try:
        part = socket.recv(zmq.NOBLOCK, copy=False)
    except zmq.Again:
        return None
    parts, count = [part], 1
    while part.more:
        part = socket.recv(copy=False)  # the parts of a message arrive together
        if count < 3:
            parts.append(part)
        count += 1
    return parts, count


def _resolve(future) -> None:
    if not future.done():
        future.set_result(None)


class _Reader:
    """A thread that owns a subscriber's socket and takes every message as libzmq decodes it,
    into a queue of at most ``capacity`` messages (0: no limit); what finds no room is dropped
    (counted in ``dropped``, never copied).

    libzmq's own queue is unlimited (RCVHWM 0), and this thread empties it whatever the consumer
    does, so libzmq never pauses a connection's input: libzmq 4.3.4 and 4.3.5 abort the process
    (``Assertion failed: !_io_error``) when the peer of a paused connection leaves while a
    heartbeat or the peer's PING is due, as a publisher does when it restarts. It holds no
    reference to its subscriber, so one that is dropped unclosed is collected (and stops it)."""

    # Messages taken in one go before the thread looks again whether it is to stop.
    BATCH = 1000

    def __init__(self, socket: zmq.Socket, capacity: int):
        self.socket = socket
        self.capacity = capacity
        self.dropped = 0
        self._queue: deque = deque()
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._waiter = None  # (loop, future) of an asyncio consumer waiting for a message
        self._error: BaseException | None = None
        self._done = False
        self._stopping = False
        # What wakes the thread from its poll to stop (zmq_poll takes sockets on every platform).
        self._wake_read, self._wake_write = _socket.socketpair()
        self.thread = threading.Thread(target=self._run, name="camflow-client-reader", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        error = None
        try:
            poller = zmq.Poller()
            poller.register(self.socket, zmq.POLLIN)
            poller.register(self._wake_read, zmq.POLLIN)
            while not self._stopping:
                poller.poll()
                for _ in range(self.BATCH):
                    taken = _read(self.socket)
                    if taken is None:
                        break
                    self._offer(taken)
        except BaseException as failure:  # noqa: BLE001 (the consumer gets it: the thread has nobody else to tell)
            error = failure
        finally:
            self.socket.close(linger=0)
            self._wake_read.close()
            with self._lock:
                self._done = True
                self._error = None if self._stopping else error
                if self._stopping:
                    self._queue.clear()
                self._ready.notify_all()
                waiter, self._waiter = self._waiter, None
            self._wake(waiter)

    def _offer(self, taken) -> None:
        with self._lock:
            if self.capacity == 0 or len(self._queue) < self.capacity:
                self._queue.append(taken)
                self._ready.notify()
                waiter, self._waiter = self._waiter, None
                dropped = 0
            else:
                self.dropped += 1
                dropped, waiter = self.dropped, None
        self._wake(waiter)
        # Said the first time, then every thousandth: a flood does not flood the log.
        if dropped and (dropped == 1 or dropped % 1000 == 0):
            log.warning("%d message(s) dropped so far: they came faster than they were taken, and the %d waiting "
                        "filled receive_buffer", dropped, self.capacity)

    @staticmethod
    def _wake(waiter) -> None:
        if waiter is not None:
            loop, future = waiter
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # its loop is closed: nobody waits any more
                pass

    def _take(self):
        # Under the lock: a message, None if there is none yet; raises once the thread has ended.
        if self._queue:
            return self._queue.popleft()
        if self._done:
            if self._error is not None:
                raise self._error
            raise zmq.ZMQError(zmq.ENOTSOCK, "the subscriber is closed")
        return None

    def get(self, deadline: float | None):
        """The next message's parts and count, None if ``deadline`` (monotonic) passes first."""
        with self._ready:
            while True:
                taken = self._take()
                if taken is not None:
                    return taken
                wait = None if deadline is None else deadline - time.monotonic()
                if wait is not None and wait <= 0:
                    return None
                self._ready.wait(wait)

    async def get_async(self, deadline: float | None):
        """As :meth:`get`, for a coroutine: the event loop runs on while it waits."""
        import asyncio  # noqa: PLC0415
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                taken = self._take()
                if taken is not None:
                    return taken
                future = loop.create_future()
                self._waiter = (loop, future)
            wait = None if deadline is None else deadline - time.monotonic()
            try:
                if wait is not None and wait <= 0:
                    return None
                await asyncio.wait_for(future, wait)
            except (asyncio.TimeoutError, TimeoutError):
                return None
            finally:
                with self._lock:
                    if self._waiter is not None and self._waiter[1] is future:
                        self._waiter = None

    def stop(self) -> None:
        """Ends the thread, which closes the socket, and waits for it (at once: it wakes for this)."""
        with self._lock:
            stopping, self._stopping = self._stopping, True
        if not stopping:
            try:
                self._wake_write.send(b"\0")
            except OSError:
                pass
        if threading.current_thread() is not self.thread:
            self.thread.join()
        self._wake_write.close()


class _Base:
    """What the blocking and the asyncio subscriber share."""

    # Streams whose state is kept at once (init segments, decoders): a publisher
    # naming a new stream in every message cannot grow memory without end.
    MAX_STREAMS = 256
    # The largest message part accepted: camflow's own limit on a packet. libzmq drops the connection
    # of a publisher that sends a larger one (a protocol error: it does not connect to it again); at
    # most receive_buffer messages wait to be taken.
    MAX_MESSAGE = 256 << 20
    # The bytes of init segments kept in ``inits``, all streams together (a real one is a few
    # kilobytes): 30 streams' init segments of 20 MB each held 611 MB.
    MAX_INIT_BYTES = 16 << 20

    def __init__(self, context, endpoint, streams, kinds, curve, idle_timeout, receive_buffer,
                 max_header=MAX_HEADER, max_init_bytes=None, max_message=None):
        self.streams = list(streams) if streams else None
        self.kinds = set(kinds) if kinds else None
        self.idle_timeout = idle_timeout
        self.max_header = max_header
        self.max_message = self.MAX_MESSAGE if max_message is None else max_message
        self.max_init_bytes = self.MAX_INIT_BYTES if max_init_bytes is None else max_init_bytes
        self.sequences = SequenceTracker()
        self.malformed = 0
        # The latest init segment of each stream (the latch sends it to every newcomer), the oldest
        # dropped beyond MAX_STREAMS streams or max_init_bytes bytes.
        self.inits: OrderedDict[str, Init] = OrderedDict()
        self._init_bytes = 0
        self._unkept = 0
        if isinstance(receive_buffer, bool) or not isinstance(receive_buffer, int) or receive_buffer < 0:
            raise ValueError(f"receive_buffer must be a count of messages (0 for no limit), not {receive_buffer!r}")
        self.receive_buffer = receive_buffer
        # A plain socket on the caller's libzmq context (an asyncio one too): the reader thread
        # owns it from here on, and closes it.
        self.socket = zmq.Context.shadow(context.underlying).socket(zmq.SUB)
        try:
            self._configure(endpoint, curve)
        except BaseException:
            self.socket.close(linger=0)
            raise
        self._reader = _Reader(self.socket, receive_buffer)
        self._close = weakref.finalize(self, self._reader.stop)

    def _configure(self, endpoint, curve):
        self.socket.setsockopt(zmq.MAXMSGSIZE, self.max_message)
        # libzmq's queue is unlimited and the reader thread empties it into receive_buffer
        # (see _Reader): a full one makes libzmq 4.3.4/4.3.5 abort the process.
        self.socket.setsockopt(zmq.RCVHWM, 0)
        # Reconnect fast after a publisher restarts, and notice a dead one.
        self.socket.setsockopt(zmq.RECONNECT_IVL, 100)
        self.socket.setsockopt(zmq.RECONNECT_IVL_MAX, 500)
        self.socket.setsockopt(zmq.CONNECT_TIMEOUT, 1000)
        self.socket.setsockopt(zmq.HEARTBEAT_IVL, 1000)
        self.socket.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3000)
        if curve is not None:
            if isinstance(curve, dict):
                curve = Curve(**curve)
            self.socket.curve_serverkey = curve.server_key.encode()
            self.socket.curve_publickey = curve.public_key.encode()
            self.socket.curve_secretkey = curve.secret_key.encode()
        for topic in subscriptions(self.streams, self.kinds):
            self.socket.setsockopt_string(zmq.SUBSCRIBE, topic)
        for address in [endpoint] if isinstance(endpoint, str) else endpoint:
            self.socket.connect(address)

    @property
    def dropped(self) -> int:
        """Messages dropped because ``receive_buffer`` of them were waiting to be taken."""
        return self._reader.dropped

    def _accept_parts(self, parts: list, count: int) -> Message | None:
        return self._accept([part.buffer for part in parts], count)

    def _accept(self, frames: list, count: int | None = None) -> Message | None:
        try:
            if count is not None and count != len(frames):
                raise MalformedMessage(f"expected 3 frames (topic, header, payload), got {count}")
            message = parse(frames, max_header=self.max_header)
        except MalformedMessage as error:
            self.malformed += 1
            # Said for the first ten, then every thousandth: a flood does not flood the log.
            if self.malformed <= 10 or self.malformed % 1000 == 0:
                log.warning("skipping a malformed message (%d so far): %s", self.malformed, error)
            return None
        if self.streams is not None and message.stream not in self.streams:
            return None
        message.gap, message.restarted = self.sequences.observe(message.topic, message.sequence)
        if message.gap:
            log.warning("%s: %d message(s) lost before sequence %d", printable(message.topic), message.gap, message.sequence)
        if message.restarted:
            log.warning("%s: the sequence went back to %d: the publisher restarted", printable(message.topic), message.sequence)
        if isinstance(message, Init):
            self._keep(message)
        if self.kinds is not None and not matches(message, self.kinds):
            return None
        return message

    def _keep(self, init: Init) -> None:
        previous = self.inits.pop(init.stream, None)
        if previous is not None:
            self._init_bytes -= len(previous.payload)
        if len(init.payload) > self.max_init_bytes:
            self._unkept += 1
            if self._unkept <= 10 or self._unkept % 1000 == 0:
                log.warning("%s: an init segment of %d bytes is not kept (max_init_bytes %d)",
                            printable(init.stream), len(init.payload), self.max_init_bytes)
            return
        self.inits[init.stream] = init
        self._init_bytes += len(init.payload)
        while len(self.inits) > self.MAX_STREAMS or self._init_bytes > self.max_init_bytes:
            _, dropped = self.inits.popitem(last=False)
            self._init_bytes -= len(dropped.payload)

    def _check_frames(self):
        if self.kinds is not None and not {"init", "frame"} <= self.kinds:
            raise ValueError("frames() needs the init and frame kinds: subscribe to them (or to every kind)")

    def close(self) -> None:
        """Stops the reader thread, which closes the socket; what was waiting is dropped."""
        self._close()


class StreamDecoders:
    """Messages in, pictures out: one video decoder per stream, made anew when
    its init segment changes. What :meth:`Subscriber.frames` uses; take it
    directly to see the messages and the pictures both.
    Whatever a message holds, taking it never raises: a frame the decoder
    cannot use makes it wait for the next keyframe.

    At most ``max_decoders`` streams are decoded at once: each decoder holds
    its stream's reference pictures (40 streams at the largest picture held
    1.6 GB). A frame of one more stream closes the decoder used least
    recently, and that stream resumes at its next keyframe."""

    # Decoders open at once (the pictures they hold), all streams together.
    MAX_DECODERS = 16

    def __init__(self, stream: str | None, image_format: str, keyframes_only: bool, max_decoders: int | None = None,
                 **limits):
        from .decode import VideoDecoder  # noqa: PLC0415 (PyAV only when frames are asked for)
        self._make = VideoDecoder
        self.stream = stream
        self.image_format = image_format
        self.keyframes_only = keyframes_only
        # max_width, max_height, max_pixels, max_nal_units of each VideoDecoder.
        self.limits = limits
        # Each stream's decoder and the digest of its init segment: not the segment itself, which
        # may be large, and which the subscriber's ``inits`` keeps within its own bound.
        self._decoders: OrderedDict[str, tuple[bytes, object]] = OrderedDict()
        self.max_decoders = self.MAX_DECODERS if max_decoders is None else max_decoders
        # Streams whose decoder is open, the one used least recently first.
        self._open: OrderedDict[str, None] = OrderedDict()
        self.closed = 0
        self.failures = 0

    def take(self, message: Message):
        if self.stream is not None and message.stream != self.stream:
            return []
        try:
            return self._take(message)
        except Exception as error:  # noqa: BLE001 (a hostile stream must not end the iteration)
            self.failures += 1
            if self.failures <= 10 or self.failures % 1000 == 0:
                log.warning("%s: frame skipped (%d so far), decoding resumes at the next keyframe: %s",
                            printable(message.stream), self.failures, printable(str(error), 300))
            entry = self._decoders.get(message.stream)
            if entry is not None:
                entry[1].reset()
            return []

    def _take(self, message: Message):
        if isinstance(message, Init):
            current = self._decoders.get(message.stream)
            digest = hashlib.sha256(message.payload).digest()
            if current is None or current[0] != digest:
                held = current[1].flush() if current is not None else []
                self._decoders.pop(message.stream, None)
                try:
                    init: InitSegment = parse_init(message.payload)
                    decoder = self._make(init, self.image_format, self.keyframes_only, **self.limits)
                    self._decoders[message.stream] = (digest, decoder)
                    while len(self._decoders) > _Base.MAX_STREAMS:
                        self._decoders.popitem(last=False)
                except ValueError as error:
                    self.failures += 1
                    if self.failures <= 10 or self.failures % 1000 == 0:
                        log.warning("%s: cannot decode this stream: %s", printable(message.stream),
                                    printable(str(error), 300))
                return held
            return []
        if message.kind == "event" and message.name == "stream-ended":
            # Nothing follows on this stream for now: the pictures held back for B-frames come out.
            entry = self._decoders.get(message.stream)
            return entry[1].flush() if entry is not None else []
        if not isinstance(message, Frame):
            return []
        entry = self._decoders.get(message.stream)
        if entry is None:
            return []
        decoder = entry[1]
        # Audio and video share a topic and its sequence: a loss anywhere in it may be a lost video frame.
        if message.gap or message.restarted or message.discontinuity:
            decoder.reset()
        if message.track is not None and message.track != decoder.track.track_id:
            return []  # audio
        pictures = decoder.decode(message)
        if decoder._context is not None:
            self._open[message.stream] = None
            self._open.move_to_end(message.stream)
            while len(self._open) > self.max_decoders:
                oldest, _ = self._open.popitem(last=False)
                entry = self._decoders.get(oldest)
                if entry is not None and entry[1]._context is not None:
                    entry[1].close()
                    self.closed += 1
                    if self.closed <= 10 or self.closed % 1000 == 0:
                        log.warning("%s: decoder closed to decode %s (max_decoders %d): it resumes at its next keyframe",
                                    printable(oldest), printable(message.stream), self.max_decoders)
        return pictures

    def flush(self):
        """What every decoder still holds, at the end."""
        return [frame for _, decoder in self._decoders.values() for frame in decoder.flush()]


class Subscriber(_Base):
    """Messages of a camflow publisher (or broker), blocking.

        with Subscriber("tcp://127.0.0.1:5555", streams=["cam1"]) as subscriber:
            for message in subscriber:
                print(message.topic, message.sequence)

    ``streams`` and ``kinds`` narrow what is received (by topic, on the
    publisher's side where ZeroMQ can); ``curve`` is a :class:`Curve` or a
    dict of its fields; iteration ends after ``idle_timeout`` seconds
    without a message (never when None). A message whose header is over
    ``max_header`` bytes is skipped as malformed; ``inits`` keeps at most
    ``max_init_bytes`` of init segments (16 MiB when None). A thread of the
    subscriber's own takes every message as it comes, and at most
    ``receive_buffer`` of them (0: no limit) wait to be taken: when the
    program is slower than its publishers, what finds no room is dropped and
    counted in ``dropped``. A message part is at most ``max_message`` bytes
    (256 MiB when None): libzmq drops the connection of a publisher that
    sends more, and does not connect to it again. ``socket`` belongs to that
    thread: set no option on it.
    """

    def __init__(self, endpoint, streams=None, kinds=None, curve=None, idle_timeout: float | None = None,
                 receive_buffer: int = 1000, context: zmq.Context | None = None, *, max_header: int = MAX_HEADER,
                 max_init_bytes: int | None = None, max_message: int | None = None):
        super().__init__(context or zmq.Context.instance(), endpoint, streams, kinds, curve, idle_timeout, receive_buffer,
                         max_header, max_init_bytes, max_message)

    def recv(self, timeout: float | None = None) -> Message | None:
        """The next message, or None after ``timeout`` seconds without one."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            taken = self._reader.get(deadline)
            if taken is None:
                return None
            message = self._accept_parts(*taken)
            if message is not None:
                return message

    def __iter__(self) -> Iterator[Message]:
        while True:
            message = self.recv(self.idle_timeout)
            if message is None:
                return
            yield message

    def frames(self, stream: str | None = None, format: str = "bgr24", keyframes_only: bool = False, **limits):
        """Decoded video frames (numpy arrays, ``bgr24`` for OpenCV) of ``stream`` (every stream when None),
        from the first keyframe on; after a gap or a publisher restart, from the next keyframe.
        ``limits``: max_width, max_height, max_pixels, max_nal_units (:class:`~camflow_client.decode.VideoDecoder`),
        max_decoders (:class:`StreamDecoders`)."""
        self._check_frames()
        decoders = StreamDecoders(stream, format, keyframes_only, **limits)
        for message in self:
            yield from decoders.take(message)
        yield from decoders.flush()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()


class AsyncSubscriber(_Base):
    """The asyncio form of :class:`Subscriber`: ``async for message in subscriber``."""

    def __init__(self, endpoint, streams=None, kinds=None, curve=None, idle_timeout: float | None = None,
                 receive_buffer: int = 1000, context=None, *, max_header: int = MAX_HEADER,
                 max_init_bytes: int | None = None, max_message: int | None = None):
        # The socket is read in a thread of its own (see _Reader), on ``context`` (a zmq.asyncio.Context
        # or a plain one) when given.
        super().__init__(context or zmq.Context.instance(), endpoint, streams, kinds, curve, idle_timeout,
                         receive_buffer, max_header, max_init_bytes, max_message)

    async def recv(self, timeout: float | None = None) -> Message | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            taken = await self._reader.get_async(deadline)
            if taken is None:
                return None
            message = self._accept_parts(*taken)
            if message is not None:
                return message

    async def __aiter__(self) -> AsyncIterator[Message]:
        while True:
            message = await self.recv(self.idle_timeout)
            if message is None:
                return
            yield message

    async def frames(self, stream: str | None = None, format: str = "bgr24", keyframes_only: bool = False,
                     **limits):
        """As :meth:`Subscriber.frames`; decoding runs in a worker thread, off the event loop."""
        import asyncio  # noqa: PLC0415
        self._check_frames()
        decoders = StreamDecoders(stream, format, keyframes_only, **limits)
        async for message in self:
            for frame in await asyncio.to_thread(decoders.take, message):
                yield frame
        for frame in await asyncio.to_thread(decoders.flush):
            yield frame

    async def __aenter__(self):
        return self

    async def __aexit__(self, *_):
        self.close()


__all__ = ["AsyncSubscriber", "Curve", "StreamDecoders", "Subscriber", "subscriptions", "topic_kind"]
