"""Fixtures for the CORS tests: a real testbed (HAProxy as the ALB + gunicorn + Django)."""

from __future__ import annotations

import shutil

import pytest


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
        health_timeout=1.0,  # a busy machine can delay an answer past 0.3 s
        healthy_threshold=2,
        unhealthy_threshold=2,
    )
    tb = Testbed(cfg)
    tb.start()
    try:
        yield tb
    finally:
        tb.stop()
