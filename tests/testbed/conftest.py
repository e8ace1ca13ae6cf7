"""Fixtures: start real testbeds (HAProxy + gunicorn + Django) on free ports, always stopped."""

from __future__ import annotations

import pytest

from testbed import Testbed, TestbedConfig

ORIGIN = "https://hakwonplus.com"
# Fast health checks so state changes show within a second or two.
# A 1 s check timeout: a busy machine can delay an answer past 0.3 s and flap the target.
FAST = dict(health_interval=0.3, health_timeout=1.0, healthy_threshold=2, unhealthy_threshold=2)


@pytest.fixture
def make_testbed():
    started: list[Testbed] = []

    def _make(**kwargs) -> Testbed:
        opts = {**FAST, **kwargs}
        if "faults" in opts:
            opts["faults"] = frozenset(opts["faults"])
        tb = Testbed(TestbedConfig(**opts))
        tb.start()
        started.append(tb)
        return tb

    yield _make
    for tb in started:
        tb.stop()
