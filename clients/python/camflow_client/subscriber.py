"""Subscribing to camflow's ZeroMQ topics: typed messages, gaps, decoded frames."""
from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from typing import AsyncIterator, Iterable, Iterator

import zmq

from collections import OrderedDict

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


class _Base:
    """What the blocking and the asyncio subscriber share."""

    # Streams whose state is kept at once (init segments, decoders): a publisher
    # naming a new stream in every message cannot grow memory without end.
    MAX_STREAMS = 256
    # The largest message part accepted: camflow's own limit on a packet. libzmq disconnects a
    # publisher that sends a larger one (it reconnects), and queues at most receive_buffer messages.
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
        self.socket = context.socket(zmq.SUB)
        try:
            self._configure(endpoint, curve, receive_buffer)
        except BaseException:
            self.socket.close(linger=0)
            raise

    def _configure(self, endpoint, curve, receive_buffer):
        self.socket.setsockopt(zmq.MAXMSGSIZE, self.max_message)
        self.socket.setsockopt(zmq.RCVHWM, receive_buffer)
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

    def _parts(self, part, parts: list, count: int) -> int:
        # Only the first three parts are kept, and without a copy: a message of a million
        # parts, or a fourth of 200 MB, costs nothing more than libzmq's own buffer.
        if count < 3:
            parts.append(part.buffer)
        return count + 1

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
        self.socket.close(linger=0)


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
    ``max_init_bytes`` of init segments (16 MiB when None). libzmq queues at
    most ``receive_buffer`` messages of at most ``max_message`` bytes a part
    (256 MiB when None; a publisher that sends more is disconnected).
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
            wait = None if deadline is None else max(0, deadline - time.monotonic())
            if not self.socket.poll(None if wait is None else int(wait * 1000)):
                return None
            parts, count = [], 0
            while True:
                part = self.socket.recv(copy=False)
                count = self._parts(part, parts, count)
                if not part.more:
                    break
            message = self._accept(parts, count)
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
        import zmq.asyncio  # noqa: PLC0415
        super().__init__(context or zmq.asyncio.Context.instance(), endpoint, streams, kinds, curve, idle_timeout,
                         receive_buffer, max_header, max_init_bytes, max_message)

    async def recv(self, timeout: float | None = None) -> Message | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = None if deadline is None else max(0, deadline - time.monotonic())
            if not await self.socket.poll(None if wait is None else int(wait * 1000)):
                return None
            parts, count = [], 0
            while True:
                part = await self.socket.recv(copy=False)
                count = self._parts(part, parts, count)
                if not part.more:
                    break
            message = self._accept(parts, count)
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
