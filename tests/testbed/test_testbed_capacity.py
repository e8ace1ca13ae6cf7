"""The testbed's capacity model can be changed while it runs (what `albprobe tune` proves), and
its gunicorn workers' memory and CPU time are read from /proc."""

from __future__ import annotations

import os

import httpx
import pytest

from testbed.errors import TestbedError
from testbed.procstat import children, usage

pytestmark = pytest.mark.slow


def test_reconfigure_restarts_gunicorn_with_the_new_workers_and_threads(make_testbed):
    tb = make_testbed(worker_class="sync", workers=1)
    tb.wait_for_health("UP", 20)
    first = {httpx.get(tb.url + "/api/fast", timeout=15).json()["pid"] for _ in range(3)}
    assert len(tb.worker_usage()) == 1
    tb.reconfigure(worker_class="gthread", workers=3, threads=2, keepalive=65)
    assert tb.capacity()["slots"] == 6 and tb.capacity()["worker_class"] == "gthread"
    assert tb.capacity()["keepalive"] == 65
    workers = tb.worker_usage()
    assert len(workers) == 3
    served = {httpx.get(tb.url + "/api/fast", timeout=15).json()["pid"] for _ in range(12)}
    assert served <= {w.pid for w in workers} and not served & first  # new workers serve
    assert any(e["kind"] == "target_reconfigured" for e in tb.events)
    with pytest.raises(TestbedError):
        tb.reconfigure(worker_class="gevent", workers=1, threads=1)


def test_worker_usage_counts_the_cpu_time_the_requests_cost(make_testbed):
    tb = make_testbed(workers=2)
    tb.wait_for_health("UP", 20)
    for _ in range(5):  # workers import Django on their first request
        httpx.get(tb.url + "/api/fast", timeout=15)
    before = sum(u.cpu_seconds for u in tb.worker_usage())
    for _ in range(150):
        httpx.get(tb.url + "/api/fast", timeout=15)
    after = tb.worker_usage()
    assert sum(u.cpu_seconds for u in after) > before
    for u in after:
        assert u.rss_mb > 5 and (u.pss_mb is None or 0 < u.pss_mb <= u.rss_mb)


def test_procstat_reads_this_process_and_a_gone_one():
    me = usage(os.getpid())
    assert me is not None and me.rss_mb > 0 and me.cpu_seconds >= 0
    assert usage(2**22 + 12345) is None  # above pid_max: never a live process
    assert children(2**22 + 12345) == []
