"""Gaps and restarts from sequence numbers, per topic: a value, no I/O."""
from __future__ import annotations

from collections import OrderedDict

_MASK = (1 << 64) - 1


class SequenceTracker:
    """Each topic's sequence numbers come from one node and rise by one.

    ``observe`` says how many were lost before a message (a slow
    subscriber's high-water mark, a network cut) and whether the sequence
    went back (the publisher restarted). Topics are bounded: a publisher
    that names a new stream in every message cannot grow this without end.
    """

    def __init__(self, max_topics: int = 4096):
        self.max_topics = max_topics
        self._last: OrderedDict[str, int] = OrderedDict()
        self.lost = 0
        self.restarts = 0

    def observe(self, topic: str, sequence: int) -> tuple[int, bool]:
        sequence &= _MASK
        last = self._last.get(topic)
        if last is None and len(self._last) >= self.max_topics:
            self._last.popitem(last=False)  # the topic heard from longest ago
        self._last[topic] = sequence
        self._last.move_to_end(topic)
        if last is None:
            return 0, False
        # camflow's sequences are 64-bit unsigned and wrap: from 2^64 - 1 the next is 0. Ahead by less
        # than half the circle is a gap; behind (or more than half ahead) is a restart.
        step = (sequence - last) & _MASK
        if step == 0:
            return 0, False  # sent again: the latch re-sends a stream's init segment to every newcomer
        if step >= 1 << 63:
            self.restarts += 1
            return 0, True
        gap = step - 1
        self.lost += gap
        return gap, False
