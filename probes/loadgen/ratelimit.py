"""A token bucket: the hard request-rate cap of a load process."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """At most ``rate`` acquisitions per second on average, bursts up to ``burst``.

    ``sleep`` is injectable: gevent.sleep inside Locust, a fake in tests.
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 10)
        self._tokens = self.burst
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self.waited = 0.0  # total seconds spent waiting for the cap (reported: the cap was binding)

    def acquire(self) -> None:
        while True:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1.0 - 1e-9:  # float dust must not turn into an endless tiny wait
                self._tokens = max(0.0, self._tokens - 1.0)
                return
            wait = (1.0 - self._tokens) / self.rate
            self.waited += wait
            self._sleep(wait)
