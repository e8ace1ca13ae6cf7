"""The distributed master's CPU per recorded row: what one master core can absorb.

    .venv/bin/python bench/bench_master_absorb.py [--rows 1000000] [--rounds 3]

In a distributed run every row reaches the master inside a worker's stats report (a msgpack
message, Locust's own `locust.rpc.Message`), and the master's `worker_report` listener appends
the columns to the run directory's writer, which writes Parquet parts on its background thread.
This measures that path in one process, CPU time of every thread: reports of realistic rows
(those of bench_recorder_memory.py, 3 s of rows at each rate) serialised as a worker does, then
on the "master" side unserialised and handed to the plugin's own `_on_worker_report`, which
writes the parts. Baseline, same invocation: the same reports without rows (Locust's stats
message alone). The figure: master CPU per row above the baseline, and the rows/s that fill one
core (1 / CPU per row). A real master also runs Locust's own loop and ZMQ, so its ceiling is
lower; this is its upper bound, and the lag a report adds (handling + write, per report) at each
rate. A master and workers over ZMQ at increasing rates: bench_master_ceiling.py.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import median  # noqa: E402

REPORT_S = 3.0  # Locust's worker report interval


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _rows(n: int) -> dict[str, list]:
    """n realistic rows, column-wise, as a worker's buffer drains them."""
    from core.rundir import SCHEMAS
    from probes.loadgen.plugin import ColumnBuffer, request_row

    buf = ColumnBuffer(list(SCHEMAS["requests"].names))
    t0 = time.time()
    statuses = (200, 200, 200, 201, 502, 500, 0)
    for i in range(n):
        st = statuses[i % len(statuses)]
        ok = st in (200, 201)
        ctx = {
            "albprobe": True,
            "kind": "actual" if i % 5 else "preflight",
            "endpoint": f"ep{i % 3}",
            "path": "/api/fast",
            "status": st,
            "source": "proxy" if st == 502 else "app",
            "source_evidence": "server: awselb/2.0" if st == 502 else None,
            "cors_ok": ok,
            "cors_step": None if ok else "allow-origin-missing",
            "cors_message": None
            if ok
            else "Access to fetch at 'https://api.example.com/api/fast' from origin "
            "'https://example.com' has been blocked by CORS policy: No "
            "'Access-Control-Allow-Origin' header is present on the requested resource.",
            "intended_ts": t0 + i * 1e-4,
            "conn_reused": bool(i % 2),
            "user_id": i % 500,
        }
        buf.append(request_row("GET", "fast", 12.5 + (i % 100), 25, ctx, None, t0 + i * 1e-4, "w1"))
    return buf.drain()


def _master(reports: list[bytes], out: Path) -> tuple[float, list[float]]:
    """(CPU s, per-report handling s) of a master absorbing ``reports`` into a run directory."""
    from gevent.threadpool import ThreadPoolExecutor
    from locust.rpc import Message

    from core.config import load_config
    from core.rundir import RunDir, TableWriter
    from probes.loadgen import plugin

    # The master's session, as the plugin's init makes it (role master, no network).
    s = plugin.SESSION = plugin.LoadSession(config=load_config(None), shape="users", role="master")
    s.rundir = RunDir.create(out, "absorb")
    ex = ThreadPoolExecutor(max_workers=1)
    s.writer = TableWriter(s.rundir, "requests", prefix="part", threadsafe=False, executor=ex)
    s.sched_writer = TableWriter(s.rundir, "schedule", prefix="part", executor=ex)
    handled = []
    c = _cpu()
    for raw in reports:
        t = time.perf_counter()
        msg = Message.unserialize(raw)
        plugin._on_worker_report(msg.node_id, msg.data)
        handled.append(time.perf_counter() - t)
    s.writer.close()
    s.sched_writer.close()
    ex.shutdown()
    cpu = _cpu() - c
    s.writer = s.sched_writer = None
    return cpu, handled


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rates", default="5000,20000,60000", help="rows/s per report (x 3 s)")
    a = ap.parse_args()
    from locust.rpc import Message

    stats = {"stats": [], "stats_total": {"num_requests": 0}, "errors": {}, "user_count": 10}
    for rate in [int(x) for x in a.rates.split(",")]:
        per = int(rate * REPORT_S)
        cols = _rows(per)
        n_reports = max(1, a.rows // per)
        with_rows = Message("stats", dict(stats, albprobe_rows=cols), "w1").serialize()
        bare = Message("stats", stats, "w1").serialize()
        costs, lags = [], []
        for _ in range(a.rounds):
            with tempfile.TemporaryDirectory(prefix="absorb-") as tmp:
                base_cpu, _ = _master([bare] * n_reports, Path(tmp) / "b")
                cpu, handled = _master([with_rows] * n_reports, Path(tmp) / "r")
            costs.append((cpu - base_cpu) / (per * n_reports) * 1e6)
            lags.append(median(handled) * 1000)
        us = median(costs)
        print(
            f"{rate:>7,} rows/s per worker report ({per:,} rows, {len(with_rows) / 1e6:.1f} MB): "
            f"master CPU {us:.2f} us/row (rounds {', '.join(f'{c:.2f}' for c in costs)}) -> "
            f"one core fills at {1e6 / us:,.0f} rows/s; handling a report {median(lags):.0f} ms",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
