"""Loaded beside locustfiles/browser.py (`-f browser.py,late_final_report.py`) by
test_load_worker_parts: a worker holds its final stats report back for LATE_S, as a worker on a
busy machine can, and at exit writes how many requests it made to $ALBPROBE_TEST_COUNTS/<pid>."""

from __future__ import annotations

import os
import time
from pathlib import Path

from locust import events
from locust.runners import STATE_STOPPED, WorkerRunner

LATE_S = 2.0  # four times the 0.5 s Locust's master waits for final reports by itself
_state = {"requests": 0, "env": None}


@events.init.add_listener
def _keep(environment, **_kw):
    _state["env"] = environment


@events.request.add_listener
def _count(**_kw):
    _state["requests"] += 1


@events.report_to_master.add_listener
def _late(client_id, data, **_kw):
    runner = _state["env"].runner
    if isinstance(runner, WorkerRunner) and runner.state == STATE_STOPPED:
        time.sleep(LATE_S)  # blocks the worker's loop: the report leaves late


@events.quitting.add_listener
def _write_count(environment, **_kw):
    if isinstance(environment.runner, WorkerRunner):
        out = Path(os.environ["ALBPROBE_TEST_COUNTS"])
        (out / str(os.getpid())).write_text(str(_state["requests"]))
