"""locustfiles/browser.py under plain `locust`: remote workers, safety, interruption."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from testbed import Testbed, TestbedConfig
from testbed.ports import free_port
from tests.load.load_helpers import stop_gently, wait_for_requests

REPO = Path(__file__).resolve().parents[2]
LOCUSTFILE = str(REPO / "locustfiles" / "browser.py")
pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("ALBPROBE_CONFIG", None)
    return env


def _master(tmp: Path, port: int, host: str, cfg: Path, *extra: str) -> subprocess.Popen:
    """A headless master expecting two workers, shape `users`, the given config."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            LOCUSTFILE,
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--expect-workers",
            "2",
            "--headless",
            "--host",
            host,
            "--albprobe-config",
            str(cfg),
            "--albprobe-shape",
            "users",
            "--albprobe-processes",
            "2",
            "--only-summary",
            *extra,
        ],
        cwd=str(tmp),
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _worker(tmp: Path, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            LOCUSTFILE,
            "--worker",
            "--master-host",
            "127.0.0.1",
            "--master-port",
            str(port),
        ],
        cwd=str(tmp),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_remote_workers_run_the_masters_config(tmp_path):
    """A master with a config, two workers started with nothing but --worker: the workers send
    the master's endpoint (from the config it ships them), and one run directory holds it all."""
    cfg = tmp_path / "m.toml"
    cfg.write_text(
        '[load]\nusers = 4\nduration = "6s"\nthink_time = 0.05\n'
        '[[endpoints]]\nname = "only-this"\npath = "/api/fast"\n'
    )
    run = tmp_path / "run"
    port = free_port()
    with Testbed(TestbedConfig()) as tb:
        master = _master(tmp_path, port, tb.url, cfg, "--albprobe-run-dir", str(run))
        workers = [_worker(tmp_path, port) for _ in range(2)]
        try:
            out, _ = master.communicate(timeout=90)
        finally:
            for p in [master, *workers]:
                if p.poll() is None:
                    p.kill()
                p.wait(10)
    summary = json.loads((run / "locust" / "summary.json").read_text())
    glob = str(run / "requests" / "*.parquet")
    rows = duckdb.sql(
        f"select endpoint, worker_id, count(*) from read_parquet('{glob}') group by all"
    ).fetchall()
    assert {e for e, _, _ in rows} == {"only-this"}, out[-2000:]
    assert {w for _, w, _ in rows} == {"w0", "w1"}
    assert sum(n for _, _, n in rows) == summary["locust_requests"] > 0


def test_plain_locust_that_lost_a_worker_is_recorded_as_partial(tmp_path):
    """Plain `locust` (its own run.json): a worker killed mid-run makes the run partial, with
    the worker and its gap in the reason."""
    cfg = tmp_path / "g.toml"
    cfg.write_text('[load]\nusers = 4\nduration = "12s"\nthink_time = 0.05\n')
    port = free_port()
    with Testbed(TestbedConfig()) as tb:
        master = _master(tmp_path, port, tb.url, cfg)
        workers = [_worker(tmp_path, port) for _ in range(2)]
        try:
            wait_for_requests(tmp_path / "runs", 20, master, pattern="*/progress.json")
            workers[0].kill()  # this test's own child
            out, _ = master.communicate(timeout=90)
        finally:
            for p in [master, *workers]:
                if p.poll() is None:
                    p.kill()
                p.wait(10)
    (run,) = (tmp_path / "runs").iterdir()
    meta = json.loads((run / "run.json").read_text())
    assert meta["workers"]["gaps"], out[-2000:]
    assert meta["status"] == "partial"
    assert meta["status_reason"].startswith("lost Locust worker w"), meta["status_reason"]


def test_plain_locust_refuses_a_host_not_on_the_allow_list(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            LOCUSTFILE,
            "--headless",
            "--host",
            "https://api.example.com",
            "-t",
            "3s",
        ],
        cwd=str(tmp_path),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert (
        "albprobe: error: target host 'api.example.com' is not on the load allow-list" in r.stderr
    )
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_plain_locust_interrupted_is_recorded_as_partial(tmp_path, sig):
    """Ctrl-C or SIGTERM mid-run: the run stops (partial, not run on to the shape's end) and every
    request Locust counted is a row, the one in flight at the signal included."""
    cfg = tmp_path / "p.toml"
    cfg.write_text('[load]\nusers = 2\nduration = "60s"\nthink_time = 0.05\n')
    with Testbed(TestbedConfig()) as tb:
        p = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                LOCUSTFILE,
                "--headless",
                "--host",
                tb.url,
                "--albprobe-config",
                str(cfg),
                "--albprobe-shape",
                "users",
                "--only-summary",
            ],
            cwd=str(tmp_path),
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            # Requests under way (not merely a process started), then the signal.
            startup = wait_for_requests(tmp_path / "runs", 10, p, pattern="*/progress.json")
            p.send_signal(sig)
            # The stop takes a fraction of the start-up on any machine; allow it many times over.
            _, err = p.communicate(timeout=max(60.0, 10 * startup))
        finally:
            stop_gently(p)
    (run,) = (tmp_path / "runs").iterdir()
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "partial", err[-2000:]
    assert "before the shape's end" in meta["status_reason"]
    rows = duckdb.sql(f"select count(*) from read_parquet('{run}/requests/*.parquet')").fetchall()
    assert rows[0][0] == meta["counts"]["requests"] == meta["counts"]["locust_requests"] >= 10
