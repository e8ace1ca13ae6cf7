"""The load user over the testbed's HTTPS listener (port 443's role): TLS verified against the
testbed CA that `albprobe run` hands it, never switched off: without the CA every call fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from testbed import Testbed, TestbedConfig

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

CONFIG = """
[load]
think_time = 0.05
[[endpoints]]
name = "fast"
path = "/api/fast"
weight = 3
[[endpoints]]
name = "write"
method = "POST"
path = "/api/items"
headers = { "Content-Type" = "application/json", "X-Client" = "albprobe" }
body = '{"title": "t"}'
"""


def _rows(run: Path) -> list[tuple]:
    glob = str(run / "requests" / "*.parquet")
    return duckdb.sql(
        f"select kind, status, source, cors_ok, error from read_parquet('{glob}')"
    ).fetchall()


def test_load_over_https_verifies_against_the_testbed_ca(cli, tmp_path):
    cfg = tmp_path / "a.toml"
    cfg.write_text(CONFIG)
    r = cli.run(*cli.users_run(cfg, "tls", users=3, duration="6s", extra=("--listener", "https")))
    assert r.returncode == 0, r.stderr[-2000:]
    meta = cli.meta("tls")
    assert meta["target"]["url"].startswith("https://127.0.0.1:")
    assert meta["target"]["listener"] == "https"
    effective = (cli.runs / "tls" / "locust" / "albprobe.toml").read_text()
    assert "ca_bundle" in effective  # the testbed CA, handed to the load user
    rows = _rows(cli.runs / "tls")
    assert rows and {k for k, *_ in rows} == {"preflight", "actual"}
    assert all(status in (200, 201) and ok and src == "app" for _, status, src, ok, _ in rows)


def test_plain_locust_without_the_ca_refuses_the_certificate(tmp_path):
    """Verification is on even when nobody configures it: the system's CAs do not know the
    testbed CA, so every call is a network error naming the certificate."""
    cfg = tmp_path / "b.toml"
    cfg.write_text(
        '[load]\nusers = 2\nduration = "3s"\nthink_time = 0.1\n' + CONFIG.split("\n", 3)[3]
    )
    run = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("ALBPROBE_CONFIG", None)
    with Testbed(TestbedConfig(listener="https")) as tb:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(REPO / "locustfiles" / "browser.py"),
                "--headless",
                "--host",
                tb.url,
                "--albprobe-config",
                str(cfg),
                "--albprobe-shape",
                "users",
                "--albprobe-run-dir",
                str(run),
                "--only-summary",
            ],
            cwd=str(tmp_path),
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
        )
    rows = _rows(run)
    assert rows
    assert all(status in (0, None) and src == "network" for _, status, src, _, _ in rows)
    assert {err for *_, err in rows} == {"SSLCertVerificationError"}, rows[:3]
