"""Helpers of the load tests (a uniquely named module: `conftest` differs per test folder)."""

from __future__ import annotations

import signal
import subprocess


def stop_gently(p: subprocess.Popen, timeout: float = 45) -> None:
    """End a child that outlived its test: SIGINT first (albprobe then stops Locust and its
    testbed in order), SIGKILL only if it does not end. A bare SIGKILL would orphan the
    testbed's HAProxy and gunicorn, which live in their own sessions."""
    if p.poll() is not None:
        return
    p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(10)
