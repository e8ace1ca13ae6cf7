"""Per-step figures of a tuning run: one open-model step at one arrival rate, a window of a
stepped run (the `rate-steps` shape: every step of a pass in one Locust process)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from analysis import correlate, dataset


@dataclass(frozen=True, slots=True, kw_only=True)
class StepFigures:
    """What one arrival-rate step measured. Latencies in ms; None = not measured, never 0.

    ``p99_ms`` is measured from each iteration's intended send time (corrected for coordinated
    omission); ``service_p99_ms`` from the actual send. ``concurrency`` is Little's law: completed
    throughput x mean time in the system."""

    offered_rps: float
    run_id: str
    status: str  # the run's status: complete, aborted, partial
    status_reason: str | None = None
    requests: int = 0
    ok: int = 0
    n5xx: int = 0
    errors: int = 0  # 5xx + network errors
    scheduled: int = 0
    dropped: int = 0
    window_s: float | None = None
    throughput_rps: float | None = None  # successful responses per second
    mean_ms: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    service_p99_ms: float | None = None
    service_ms: float | None = None  # the mix's service time (requests that did not wait)
    concurrency: float | None = None
    cpu_seconds: float | None = None  # gunicorn workers' CPU time in the step (testbed only)
    cpu_wait_seconds: float | None = None  # ... and the time they waited for a CPU

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def rate_5xx(self) -> float | None:
        return self.n5xx / self.requests if self.requests else None

    @property
    def dropped_rate(self) -> float | None:
        return self.dropped / self.scheduled if self.scheduled else None

    def figures(self) -> dict[str, Any]:
        """The figure keys the SLO and --fail-on grammar reads (analysis.reports.thresholds)."""
        return {
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "co_p99_ms": self.p99_ms,
            "5xx_rate": self.rate_5xx,
            "error_rate": self.error_rate,
            "failure_rate": self.error_rate,
            "dropped_rate": self.dropped_rate,
            "throughput_rps": self.throughput_rps,
        }

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(error_rate=self.error_rate, rate_5xx=self.rate_5xx, dropped_rate=self.dropped_rate)
        return d


_STEP_SQL = """
SELECT count(*) AS requests,
  count(*) FILTER (WHERE status BETWEEN 200 AND 399) AS ok,
  count(*) FILTER (WHERE status >= 500) AS n5xx,
  count(*) FILTER (WHERE status >= 500 OR status = 0 OR source = 'network') AS errors,
  min(ts) AS first_ts,
  max(ts + latency_ms / 1000.0) AS last_done,
  avg(coalesce(co_latency_ms, latency_ms)) AS mean_ms,
  quantile_cont(coalesce(co_latency_ms, latency_ms), 0.5) AS p50_ms,
  quantile_cont(coalesce(co_latency_ms, latency_ms), 0.99) AS p99_ms,
  quantile_cont(latency_ms, 0.99) AS service_p99_ms
FROM requests WHERE kind = 'actual' AND ts IS NOT NULL {window}
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class StepWindow:
    """One step of a stepped run (the `rate-steps` shape: many steps in one run directory): its
    offered rate and the intended send times it covered, as the load process answered them."""

    run_id: str
    offered_rps: float
    start: float
    end: float
    status: str = "complete"
    status_reason: str | None = None
    scheduled: int = 0
    dropped: int = 0


def window_figures(
    run_dir: str | Path,
    step: StepWindow,
    *,
    cpu_seconds: float | None = None,
    cpu_wait_seconds: float | None = None,
) -> StepFigures:
    """Figures of one step of a stepped run: the requests whose intended send time fell in the
    step's window (a late completion still belongs to the step that sent it)."""
    ds = dataset.open_run(run_dir)
    try:
        base: dict[str, Any] = dict(
            offered_rps=float(step.offered_rps),
            run_id=step.run_id,
            status=step.status,
            status_reason=step.status_reason,
            scheduled=step.scheduled,
            dropped=step.dropped,
            cpu_seconds=cpu_seconds,
            cpu_wait_seconds=cpu_wait_seconds,
        )
        where = f"AND intended_ts >= {step.start!r} AND intended_ts < {step.end!r}"
        return _measure(ds, base, where)
    finally:
        ds.close()


def _measure(ds: dataset.Dataset, base: dict[str, Any], where: str) -> StepFigures:
    """The step's figures from its `requests` rows (``where``: more conditions on them)."""
    if not ds.present.get("requests"):
        return StepFigures(**base)
    row = correlate._one(ds, _STEP_SQL.format(window=where))
    service = correlate.mix_service_ms(ds)
    n = int(row.get("requests") or 0)
    first, last = row.get("first_ts"), row.get("last_done")
    # Completions are counted over the span from the first send to the last completion: past the
    # knee the queue drains after the last send, and that drain is the server's throughput too.
    window = (last - first) if first is not None and last is not None else None
    ok = int(row.get("ok") or 0)
    x = ok / window if window and window > 0 else None
    mean = row.get("mean_ms")
    return StepFigures(
        **base,
        requests=n,
        ok=ok,
        n5xx=int(row.get("n5xx") or 0),
        errors=int(row.get("errors") or 0),
        window_s=window,
        throughput_rps=x,
        mean_ms=mean,
        p50_ms=row.get("p50_ms"),
        p99_ms=row.get("p99_ms"),
        service_p99_ms=row.get("service_p99_ms"),
        service_ms=service,
        # Little's law over every request in the system (failed ones occupy it too).
        concurrency=(n / window) * (mean / 1000.0) if window and mean is not None else None,
    )
