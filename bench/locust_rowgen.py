"""The row source of bench_master_ceiling.py: a Locust user that makes `requests` rows at a set rate
without sending anything (no network at all), so that two workers on a 2-core machine can feed a
master far more rows per second than real requests would.

Each worker's single user emits ALBBENCH_ROWS_PER_S / ALBBENCH_WORKERS rows per second, in 20 ms
batches: realistic rows (bench_master_absorb's: statuses, CORS messages) cut from a template, with
a fresh send time (`ts`) each, handed to the plugin as the request listener would (worker-parts
mode: the worker's own writer; otherwise the buffer its stats report ships), and counted in
Locust's stats in bulk (so rows == Locust's count still holds). At quit each worker writes how
many rows it made to ALBBENCH_OUT/gen-<pid>.json.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import gevent
from locust import User, events, task

from locustfiles.shapes import AlbprobeShape  # noqa: F401  (Locust picks the shape up from here)
from probes.loadgen import plugin

plugin.install()

TICK = 0.02
_TEMPLATE: dict[str, list] = {}
_TEMPLATE_ROWS = 20_000
GENERATED = [0]


def _template() -> dict[str, list]:
    if not _TEMPLATE:
        from bench.bench_master_absorb import _rows

        _TEMPLATE.update(_rows(_TEMPLATE_ROWS))
    return _TEMPLATE


def _log_bulk(n: int, now: float) -> None:
    """Locust's stats as n GET requests of 10 ms and 25 bytes would leave them."""
    stats = plugin.session().environment.stats
    t = int(now)
    for e in (stats.get("gen", "GET"), stats.total):
        e.num_requests += n
        e.num_reqs_per_sec[t] += n
        e.total_response_time += 10 * n
        e.response_times[10] += n
        e.min_response_time = 10 if e.min_response_time is None else min(e.min_response_time, 10)
        e.max_response_time = max(e.max_response_time, 10)
        e.total_content_length += 25 * n
        e.last_request_timestamp = now


def _emit(n: int, now: float) -> None:
    s = plugin.session()
    tpl = _template()
    cols: dict[str, list] = {}
    start = GENERATED[0] % (_TEMPLATE_ROWS - n) if n < _TEMPLATE_ROWS else 0
    for c, values in tpl.items():
        cols[c] = values[start : start + n]
    step = TICK / max(n, 1)
    cols["ts"] = [now - TICK + i * step for i in range(n)]
    cols["intended_ts"] = cols["ts"]
    if s.writer is not None:  # worker-parts mode: the worker's own parts
        s.writer.append_columns(cols)
    else:  # shipped in the next stats report
        buf = s.buffer
        for c in buf.columns:
            buf._cols[c].extend(cols.get(c) or [None] * n)
        buf.n += n
    _log_bulk(n, now)
    GENERATED[0] += n


class RowGen(User):
    def wait_time(self) -> float:
        return 0.0

    @task
    def generate(self) -> None:
        rate = float(os.environ.get("ALBBENCH_ROWS_PER_S", "1000")) / max(
            int(os.environ.get("ALBBENCH_WORKERS", "1")), 1
        )
        t0 = time.time()
        sent = 0
        while True:  # until Locust stops the user
            gevent.sleep(TICK)
            now = time.time()
            due = int((now - t0) * rate) - sent
            while due > 0:
                n = min(due, _TEMPLATE_ROWS - 1)
                _emit(n, now)
                sent += n
                due -= n


@events.quit.add_listener
def _write_generated(**_kw) -> None:
    out = os.environ.get("ALBBENCH_OUT")
    if out and plugin.SESSION is not None and plugin.SESSION.role == "worker":
        Path(out, f"gen-{os.getpid()}.json").write_text(json.dumps({"rows": GENERATED[0]}))
