"""Fixtures for the AWS area: one moto server per session (a real HTTP endpoint for boto3), reset
between tests, and a builder for the production-like topology the runbook describes."""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from probes.aws.session import AwsClients
from tests.aws.aws_topology import ACCOUNT, REGION, Prod, boto_client, build_prod  # noqa: F401 - re-exported


def _moto_command() -> list[str]:
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    if exe:
        return [exe, "-H", "127.0.0.1", "-p0"]
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p0"]


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """Start moto_server on a free port (-p0) and stop it, by its Popen handle, at the end."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        _moto_command(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:  # keep draining stderr so moto never blocks on a full pipe
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    url = None
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline and url is None:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                if proc.poll() is not None:
                    break
                continue
            m = re.search(r"Running on (http://127\.0\.0\.1:\d+)", line)
            if m:
                url = m.group(1)
        if url is None:
            raise RuntimeError("moto_server did not start within 30 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture
def moto(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A clean moto (POST /moto-api/reset) and dummy credentials; returns the endpoint URL."""
    req = urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/albprobe-test-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/albprobe-test-credentials")
    return moto_url


@pytest.fixture
def clients(moto: str) -> AwsClients:
    return AwsClients(region=REGION, endpoint_url=moto, max_attempts=2)


@pytest.fixture
def prod(clients: AwsClients) -> Prod:
    return build_prod(clients)
