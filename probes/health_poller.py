"""A background poller that samples target health into the run directory's `health` table.

The sampler is any callable returning health rows (docs/run-directory.md): HAProxy's stats for
the testbed, describe_target_health for an ALB. Sampling errors are counted, never fatal: a run
must not die because one stats read failed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from probes.rundir import RunDir, TableWriter

Sampler = Callable[[], list[dict[str, Any]]]

# HAProxy server status -> the ALB's target-health vocabulary.
_HAPROXY_STATE = {
    "UP": "healthy",
    "DOWN": "unhealthy",
    "NOLB": "draining",
    "MAINT": "unused",
    "DRAIN": "draining",
    "no": "unavailable",
}


def haproxy_health_row(
    ts: float,
    target: str,
    status: str,
    check_status: str,
    check_code: str,
    last_chk: str,
    scur: int | None,
    qcur: int | None,
) -> dict[str, Any]:
    """One HAProxy `show stat` server row as a health row. "UP 1/2" (going down) is still healthy
    and "DOWN 1/2" (going up) still unhealthy, as the ALB's thresholds have them."""
    word = status.split()[0] if status else "no"
    return {
        "ts": ts,
        "target": target,
        "state": _HAPROXY_STATE.get(word, "unavailable"),
        "reason": check_status or None,
        "description": " ".join(x for x in (check_code, last_chk) if x) or None,
        "collector": "haproxy",
        "in_flight": scur,
        "queued": qcur,
    }


class HealthPoller:
    def __init__(self, sampler: Sampler, rundir: RunDir, *, interval: float = 1.0) -> None:
        self.sampler = sampler
        self.interval = interval
        self.writer = TableWriter(rundir, "health", prefix="poll", flush_seconds=5.0)
        self.errors = 0
        self.last_error: str | None = None
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                rows = self.sampler()
                self.writer.extend(rows)
                self.samples += 1
            except Exception as exc:  # keep polling; report at the end
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - t0)))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.interval + 5)
        self.writer.close()
