"""Helpers of the load tests (a uniquely named module: `conftest` differs per test folder)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


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


def wait_until(
    check: Callable[[], bool], proc: subprocess.Popen, what: str, budget: float = 180
) -> float:
    """Poll ``check`` until it holds; return the seconds it took. Fails at once if ``proc``
    ended; ``budget`` only guards against a hang."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < budget:
        if proc.poll() is not None:
            raise AssertionError(f"the Locust process ended early (exit code {proc.returncode})")
        if check():
            return time.monotonic() - t0
        time.sleep(0.1)
    raise AssertionError(f"no {what} in {budget:.0f} s")


def read_json(path: Path) -> dict | None:
    """A JSON file another process rewrites (atomically, but it may be between replaces)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def wait_for_requests(
    where: Path,
    requests: int,
    proc: subprocess.Popen,
    *,
    pattern: str = "progress.json",
    budget: float = 180,
) -> float:
    """Wait until the run's progress.json (``where/pattern``, rewritten every second by the Locust
    process) counts ``requests``; return the seconds it took, a measure of this machine's pace
    right now."""

    def counted() -> bool:
        return any((read_json(p) or {}).get("requests", 0) >= requests for p in where.glob(pattern))

    return wait_until(counted, proc, f"{requests} requests", budget)
