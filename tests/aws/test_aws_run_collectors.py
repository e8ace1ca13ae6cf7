"""`albprobe run` against a non-testbed URL polls the ALB's target health (moto server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from testbed import Testbed, TestbedConfig

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_run_against_a_url_records_alb_target_health(moto, clients, prod, tmp_path):
    with Testbed(TestbedConfig()) as tb:  # stands in for the API behind the ALB
        cfg = tmp_path / "albprobe.toml"
        cfg.write_text(f"""
target = "{tb.url}"
[safety]
allowed_hosts = ["127.0.0.1"]
[load]
think_time = 0.1
[aws]
region = "{clients.region}"
endpoint_url = "{moto}"
load_balancer = "{prod.lb_name}"
poll_interval = "0.5s"
""")
        env = dict(os.environ, PYTHONPATH=str(REPO))
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "albprobe",
                "run",
                "--config",
                str(cfg),
                "--shape",
                "users",
                "--users",
                "2",
                "--duration",
                "4s",
                "--runs-dir",
                str(tmp_path / "runs"),
                "--run-id",
                "remote",
                "--no-analyze",
                "--ssm-logs",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=str(tmp_path),
        )
    assert r.returncode == 0, r.stderr[-2000:]
    run = tmp_path / "runs" / "remote"
    meta = json.loads((run / "run.json").read_text())
    assert meta["target"]["kind"] == "url" and meta["aws"]["target_group_arn"] == prod.tg_arn
    assert (
        meta["collectors"]["health"]["kind"] == "alb"
        and meta["collectors"]["health"]["samples"] >= 3
    )
    health = pq.read_table(run / "health").to_pydict()
    assert set(health["collector"]) == {"alb"} and prod.instance in set(health["target"])
    assert set(health["state"]) == {"healthy"}
    assert "cloudwatch_rows" in meta["aws"] or "cloudwatch_error" in meta["aws"]
    # opt-in SSM fetch of the container logs, one file per instance target
    assert meta["aws"]["ssm_logs"] == [f"gunicorn-ssm-{prod.instance}.log"], meta["aws"]
    assert (run / "logs" / f"gunicorn-ssm-{prod.instance}.log").exists()


def test_run_with_an_unknown_load_balancer_still_runs_and_says_why(moto, clients, tmp_path):
    with Testbed(TestbedConfig()) as tb:
        cfg = tmp_path / "albprobe.toml"
        cfg.write_text(f"""
target = "{tb.url}"
[safety]
allowed_hosts = ["127.0.0.1"]
[aws]
region = "{clients.region}"
endpoint_url = "{moto}"
load_balancer = "no-such-alb"
""")
        env = dict(os.environ, PYTHONPATH=str(REPO))
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "albprobe",
                "run",
                "--config",
                str(cfg),
                "--shape",
                "users",
                "--users",
                "1",
                "--duration",
                "2s",
                "--runs-dir",
                str(tmp_path / "runs"),
                "--run-id",
                "nolb",
                "--no-analyze",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=str(tmp_path),
        )
    assert r.returncode == 0, r.stderr[-2000:]
    meta = json.loads((tmp_path / "runs" / "nolb" / "run.json").read_text())
    assert "no-such-alb" in meta["aws"]["error"] and meta["status"] == "complete"
    assert "ALB target-health poller not started" in r.stdout


def test_tune_against_a_url_reads_worker_memory_through_ssm_when_asked(
    moto, clients, prod, tmp_path
):
    with Testbed(TestbedConfig()) as tb:  # stands in for the API behind the ALB
        cfg = tmp_path / "albprobe.toml"
        cfg.write_text(f"""
target = "{tb.url}"
[safety]
allowed_hosts = ["127.0.0.1"]
[aws]
region = "{clients.region}"
endpoint_url = "{moto}"
load_balancer = "{prod.lb_name}"
""")
        env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="200")
        r = subprocess.run(
            [
                *(sys.executable, "-m", "albprobe", "tune"),
                *("--config", str(cfg), "--endpoint", "/api/fast", "--start-rate", "5"),
                *("--step", "3s", "--steps", "1", "--ssm-stats", "--out", str(tmp_path / "t")),
            ],
            capture_output=True,
            text=True,
            # next to two CPU hogs the whole tune (testbed, Locust, one step, analysis) took
            # 121 s at nice 10: the budget is pytest's own 300 s, less room for the checks
            timeout=270,
            env=env,
            cwd=str(tmp_path),
        )
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    doc = json.loads((tmp_path / "t" / "tune.json").read_text())
    assert (
        doc["figures"]["knee_rps"] is not None and doc["after"] is None
    )  # no proof off the testbed
    assert any("not proven" in s for s in doc["statements"])
    sent = [c["Parameters"]["commands"][0] for c in clients.ssm.list_commands()["Commands"]]
    assert any(c.startswith("docker stats --no-stream") for c in sent), sent
    # moto runs nothing, so no worker was found: the recommendation says memory is unknown
    assert "no gunicorn worker found" in r.stdout
    assert doc["measurements"]["memory"] is None
    assert any("memory per worker unknown" in n for n in doc["recommendation"]["notes"])
