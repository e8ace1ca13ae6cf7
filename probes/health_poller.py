"""A background poller that samples target health into the run directory's `health` table.

The sampler is any callable returning health rows (docs/run-directory.md): HAProxy's stats for
the testbed, describe_target_health for an ALB. Sampling errors are counted, never fatal: a run
must not die because one stats read failed. PollingCollector runs a poller as a run collector
(core.collector); HaproxyHealthCollector is the testbed's.
"""

from __future__ import annotations

import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

from core.collector import Collector, CollectorResult, RunContext, relative_files
from core.rundir import RunDir, TableWriter

Sampler = Callable[[], list[dict[str, Any]]]

# HAProxy server status -> the ALB's target-health vocabulary.
_HAPROXY_STATE = {
    "UP": "healthy",
    "DOWN": "unhealthy",
    "NOLB": "draining",
    "MAINT": "unused",
    "DRAIN": "draining",
    "INITIAL": "initial",  # registered, not yet through its health checks
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
    """Sample target health every ``interval`` s in a background thread into the health table.

    Errors never stop a load run: each is counted (and logged to logs/<error_log> when given);
    a sampler sets ``fatal`` when retrying cannot help (AccessDenied, say) and polling stops.
    """

    def __init__(
        self,
        sampler: Sampler,
        rundir: RunDir,
        *,
        interval: float = 1.0,
        prefix: str = "poll",
        flush_rows: int = 50_000,
        flush_seconds: float = 5.0,
        max_samples: int | None = None,
        error_log: str | None = None,
        name: str = "health-poller",
    ) -> None:
        self.sampler = sampler
        self.rundir = rundir
        self.interval = interval
        self.max_samples = max_samples
        self.error_log = error_log
        self.prefix = prefix
        self.writer = TableWriter(
            rundir, "health", prefix=prefix, flush_rows=flush_rows, flush_seconds=flush_seconds
        )
        self.errors = 0
        self.last_error: str | None = None
        self.samples = 0
        self.fatal = False
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> int:
        """One sample; returns the number of rows written (the sampler's exception propagates)."""
        rows = self.sampler()
        self.writer.extend(rows)
        self.samples += 1
        return len(rows)

    def _log(self, message: str) -> None:
        if self.error_log:
            self.rundir.logs.mkdir(parents=True, exist_ok=True)
            with open(self.rundir.logs / self.error_log, "a", encoding="utf-8") as fh:
                fh.write(f"{datetime.now(UTC).isoformat()} {message}\n")

    def _run(self) -> None:
        while not self._stop.is_set() and (
            self.max_samples is None or self.samples < self.max_samples
        ):
            t0 = time.monotonic()
            try:
                self.poll_once()
            except Exception as exc:  # keep polling; report at the end
                self.errors += 1
                one_line = getattr(exc, "one_line", None)
                self.last_error = (
                    one_line() if callable(one_line) else f"{type(exc).__name__}: {exc}"
                )
                self._log(self.last_error)
                if self.fatal:
                    break
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - t0)))

    def start(self) -> HealthPoller:
        if self._thread is not None:
            raise RuntimeError("poller already started")
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop, wait for an in-flight sample (bounded) and flush what was collected."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval + 5 if timeout is None else timeout)
        self.writer.close()

    def __enter__(self) -> HealthPoller:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PollingCollector(Collector):
    """A HealthPoller as a run collector: it polls from start() to stop(), and run.json's
    collectors.health reports its samples and errors. No poller (nothing to poll) writes nothing."""

    name = "health"
    kind = "?"

    def __init__(self) -> None:
        self.poller: HealthPoller | None = None
        self.stopped = False

    @abstractmethod
    def make_poller(self, run: RunContext) -> HealthPoller | None: ...

    def start(self, run: RunContext) -> None:
        self.poller = self.make_poller(run)
        if self.poller is not None:
            self.poller.start()

    def stop(self, run: RunContext) -> None:
        if self.poller is not None and not self.stopped:
            self.poller.stop()
        self.stopped = True

    def result(self) -> CollectorResult:
        p = self.poller
        if p is None or not self.stopped:
            return CollectorResult(self.name)
        health = {"samples": p.samples, "errors": p.errors, "last_error": p.last_error}
        return CollectorResult(
            self.name,
            files=relative_files(p.rundir, p.writer.table_dir.glob(f"{p.prefix}-*.parquet")),
            record={"collectors": {"health": health | {"kind": self.kind}}},
        )


class ServerRow(Protocol):
    """The fields of one HAProxy `show stat` server row this module reads (testbed.haproxy's
    ServerStat has them)."""

    name: str
    status: str
    check_status: str
    check_code: str
    last_chk: str
    scur: int
    qcur: int


class HaproxyHealthCollector(PollingCollector):
    """The testbed's target health from HAProxy's stats every ``interval`` s: one row per target
    per sample. ``targets`` returns (ip:port, server row) per target, the row already merged by
    the testbed (the routing server's state, its health-check server's last check, and the load
    on it and its fail-open backup)."""

    kind = "haproxy"

    def __init__(
        self, targets: Callable[[], Iterable[tuple[str, ServerRow]]], interval: float = 0.5
    ) -> None:
        super().__init__()
        self.targets = targets
        self.interval = interval

    def sample(self) -> list[dict[str, Any]]:
        now = time.time()
        return [
            haproxy_health_row(
                now, label, st.status, st.check_status, st.check_code, st.last_chk, st.scur, st.qcur
            )
            for label, st in self.targets()
        ]

    def make_poller(self, run: RunContext) -> HealthPoller:
        return HealthPoller(self.sample, run.rundir, interval=self.interval)
