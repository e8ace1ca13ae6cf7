"""Fixtures for the CORS tests: a real testbed (HAProxy as the ALB + gunicorn + Django)."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator

import pytest

ORIGIN = "https://hakwonplus.com"


@pytest.fixture(scope="module")
def cors_testbed():
    """One testbed per module; faults are switched on and off by the tests (see `fault`)."""
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy is not installed (scripts/bootstrap.sh installs it)")
    from testbed import Testbed, TestbedConfig

    cfg = TestbedConfig(
        timeout=2.0,  # gunicorn --timeout: the `hang` fault then produces its own 500 quickly
        connect_timeout=1.0,
        health_interval=0.3,
        health_timeout=0.3,
        healthy_threshold=2,
        unhealthy_threshold=2,
    )
    tb = Testbed(cfg)
    tb.start()
    try:
        yield tb
    finally:
        tb.stop()


@contextlib.contextmanager
def fault(tb, name: str, wait: str | None = None) -> Iterator[None]:
    """Switch a testbed fault on for the block; always switch it off again."""
    tb.set_fault(name, True)
    try:
        if wait:
            tb.wait_for_health(wait, timeout=20)
        yield
    finally:
        tb.set_fault(name, False)
        if wait:
            tb.wait_for_health("UP", timeout=30)
