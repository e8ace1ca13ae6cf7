"""Loaded beside locustfiles/browser.py (`-f browser.py,slow_worker.py`) by
test_load_worker_parts: a worker as a busy machine makes it. Each knob is an environment
variable, in seconds, 0 = off:

* ALBPROBE_TEST_LATE_REPORT_S: every worker holds its final stats report back that long;
* ALBPROBE_TEST_SLOW_START_S: worker w0's test start takes that long (albprobe's own test start
  runs after it: this plugin's listener is registered first, at import);
* ALBPROBE_TEST_W0_DIES_AT_QUIT (1 = on): worker w0 dies instead of sending its final report;
* ALBPROBE_TEST_MASTER_DROPS_ROWS (1 = on): the master drops the rows of the first report that
  carries some, as a master past its ceiling loses them, while Locust still counts them (this
  listener runs before Locust's and albprobe's: it is registered first);

and at exit each worker writes how many requests it made to $ALBPROBE_TEST_COUNTS/<pid>."""

from __future__ import annotations

import os
import time
from pathlib import Path

import gevent
from locust import events
from locust.runners import STATE_STOPPED, WorkerRunner

_state = {"requests": 0, "env": None}


def _knob(name: str) -> float:
    return float(os.environ.get(name, "0") or 0)


@events.init.add_listener
def _keep(environment, **_kw):
    _state["env"] = environment


@events.request.add_listener
def _count(**_kw):
    _state["requests"] += 1


@events.test_start.add_listener
def _slow_start(environment, **_kw):
    runner = environment.runner
    if isinstance(runner, WorkerRunner) and runner.worker_index == 0:
        gevent.sleep(_knob("ALBPROBE_TEST_SLOW_START_S"))  # its heartbeats go on meanwhile


@events.report_to_master.add_listener
def _late(client_id, data, **_kw):
    runner = _state["env"].runner
    if isinstance(runner, WorkerRunner) and runner.state == STATE_STOPPED:
        if runner.worker_index == 0 and _knob("ALBPROBE_TEST_W0_DIES_AT_QUIT"):
            os._exit(1)  # no final report, no goodbye
        time.sleep(_knob("ALBPROBE_TEST_LATE_REPORT_S"))  # blocks the loop: the report leaves late


@events.worker_report.add_listener
def _drop_rows(client_id, data, **_kw):
    dropping = _knob("ALBPROBE_TEST_MASTER_DROPS_ROWS") and not _state.get("dropped")
    if dropping and data.pop("albprobe_rows", None):
        _state["dropped"] = True


@events.quitting.add_listener
def _write_count(environment, **_kw):
    if isinstance(environment.runner, WorkerRunner):
        out = Path(os.environ["ALBPROBE_TEST_COUNTS"])
        (out / str(os.getpid())).write_text(str(_state["requests"]))
