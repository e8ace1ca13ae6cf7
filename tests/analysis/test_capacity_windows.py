"""A step of a stepped run (`rate-steps`) is judged from the rows of its own window of intended
send times, not from the whole run directory."""

from __future__ import annotations

import pytest

from analysis.capacity import StepWindow, window_figures
from core.rundir import RunDir, TableWriter


def _rows(start: float, rate: float, seconds: float, latency_ms: float, status: int) -> list[dict]:
    n = int(rate * seconds)
    return [
        {
            "ts": start + i / rate,
            "intended_ts": start + i / rate,
            "kind": "actual",
            "endpoint": "slow",
            "method": "GET",
            "path": "/api/slow",
            "status": status,
            "source": "app" if status < 500 else "proxy",
            "latency_ms": latency_ms,
            "co_latency_ms": latency_ms,
            "worker_id": "local",
        }
        for i in range(n)
    ]


def test_each_window_counts_only_its_own_rows(tmp_path):
    rd = RunDir.create(tmp_path, "stepped")
    rd.write_meta({"run_id": "stepped", "status": "complete", "shape": {"name": "rate-steps"}})
    w = TableWriter(rd, "requests")
    # step 1: 10 req/s for 4 s, fast and fine; step 2 (a pause later): 20 req/s, slow, 5xx
    w.extend(_rows(1000.0, 10, 4, 100.0, 200))
    w.extend(_rows(1004.3, 20, 4, 900.0, 502))
    w.close()
    one = window_figures(
        rd.path,
        StepWindow(run_id="stepped/01", offered_rps=10, start=1000.0, end=1004.0, scheduled=40),
    )
    two = window_figures(
        rd.path,
        StepWindow(
            run_id="stepped/02", offered_rps=20, start=1004.3, end=1008.3, scheduled=80, dropped=3
        ),
    )
    assert (one.requests, one.n5xx, one.p99_ms) == (40, 0, 100.0)
    assert (two.requests, two.n5xx, two.p99_ms) == (80, 80, 900.0)
    assert one.status == "complete" and one.run_id == "stepped/01"
    assert (two.scheduled, two.dropped) == (80, 3)
    # throughput over the step's own span: 40 completions in 3.9 s + the last one's 0.1 s
    assert one.throughput_rps == pytest.approx(40 / 4.0)
