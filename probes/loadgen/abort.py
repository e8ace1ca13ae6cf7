"""Automatic abort: the error rate stayed above a threshold for N seconds."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class AbortRule:
    """Feed cumulative (requests, failures) totals once a second; ``check`` returns the reason to
    abort, or None. Seconds without new requests neither extend nor break a streak (distributed
    workers report every few seconds)."""

    threshold: float
    seconds: float
    min_requests: int = 20
    _last: tuple[int, int] | None = None
    _last_ts: float = 0.0
    _streak_start: float | None = None
    _streak_requests: int = 0

    def check(self, now: float, requests: int, failures: int) -> str | None:
        if self._last is None:
            self._last, self._last_ts = (requests, failures), now
            return None
        dr, df = requests - self._last[0], failures - self._last[1]
        self._last, prev_ts, self._last_ts = (requests, failures), self._last_ts, now
        if dr <= 0:
            return None
        if df / dr >= self.threshold:
            if self._streak_start is None:
                self._streak_start = prev_ts  # the failing interval began at the previous sample
                self._streak_requests = 0
            self._streak_requests += dr
            if (
                now - self._streak_start >= self.seconds
                and self._streak_requests >= self.min_requests
            ):
                return (
                    f"error rate stayed >= {self.threshold:.0%} for {now - self._streak_start:.0f} s "
                    f"({self._streak_requests} requests)"
                )
        else:
            self._streak_start = None
        return None
