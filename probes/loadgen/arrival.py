"""The open model: iterations start at intended times, whatever the server's latency.

Locust is a closed model (each user waits for its response before sending again), which hides
slowness: coordinated omission. Here a scheduler hands intended start times to idle users; when no
user is idle at an intended time, the iteration is dropped and counted (k6's dropped_iterations),
and each request's latency is also measured from its intended time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any


def intended_times(
    start: float, duration: float, start_rate: float, end_rate: float, *, offset: float = 0.0
) -> Iterator[float]:
    """Intended start times for a rate ramping linearly start_rate -> end_rate (iterations/s)
    over ``duration``; constant when the two are equal. Exact inversion of the cumulative count.
    ``offset`` (0..1) shifts this process's slots so several processes interleave."""
    if start_rate <= 0 and end_rate <= 0:
        return
    a = (end_rate - start_rate) / duration if duration > 0 else 0.0
    k = offset
    while True:
        if abs(a) < 1e-12:
            t = k / start_rate
        else:
            disc = start_rate * start_rate + 2 * a * k
            if disc < 0:
                return
            t = (-start_rate + math.sqrt(disc)) / a
        if t >= duration:
            return
        yield start + t
        k += 1


class ArrivalScheduler:
    """Runs in a greenlet; users block in ``next_slot()``. Counts scheduled and dropped per second."""

    def __init__(self, times: Iterator[float]) -> None:
        import gevent.queue

        self._times = times
        self._channel: gevent.queue.Channel = gevent.queue.Channel()
        self._greenlet = None
        self.per_second: dict[int, list[int]] = {}  # second -> [scheduled, dropped]
        self.scheduled = 0
        self.dropped = 0

    def start(self) -> None:
        import gevent

        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None

    def _run(self) -> None:
        import time

        import gevent

        for t, item in self._slots():
            delay = t - time.time()
            if delay > 0:
                gevent.sleep(delay)
            else:  # behind: let the users handed the previous slots run (and wait again) first
                gevent.sleep(0)
            bucket = self.per_second.setdefault(int(t), [0, 0])
            bucket[0] += 1
            self.scheduled += 1
            if not self._hand(item):
                bucket[1] += 1
                self.dropped += 1

    def _slots(self) -> Iterator[tuple[float, Any]]:
        """(intended time, what a user gets) in time order; here the time itself."""
        return ((t, t) for t in self._times)

    def _hand(self, item: Any) -> bool:
        """Give ``item`` to an idle user now; False (a dropped iteration) when none is idle."""
        import gevent.queue

        try:
            self._channel.put(item, block=False)  # only succeeds if a user is waiting
        except gevent.queue.Full:
            return False
        return True

    def next_slot(self) -> Any:
        return self._channel.get()

    def waiting(self) -> int:
        """Users idle in next_slot(), waiting for an intended time."""
        return len(self._channel.getters)

    def drain_seconds(self, upto: float) -> list[tuple[int, int, int]]:
        """Completed seconds (< upto) as (ts, scheduled, dropped), removed from the buffer."""
        done = sorted(s for s in self.per_second if s < int(upto))
        return [(s, *self.per_second.pop(s)) for s in done]
