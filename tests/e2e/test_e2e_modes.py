"""Every failure mode of the matrix in docs/architecture.md, caused on the testbed, loaded through Locust and
diagnosed by the analyzer: `albprobe demo --mode MODE`, run as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from albprobe.demo_scenarios import MODES, SCENARIOS

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def run_demo(mode: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess, dict, Path]:
    env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="160")
    args = [sys.executable, "-m", "albprobe", "demo", "--runs-dir", str(tmp_path / "runs")]
    if mode != "default":
        args += ["--mode", mode]
    r = subprocess.run(
        args, capture_output=True, text=True, timeout=300, env=env, cwd=str(tmp_path)
    )
    assert r.returncode == 0, r.stderr[-3000:]
    (run,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run / "report" / "summary.json").read_text())
    return r, summary.get("verdict", summary), run


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_is_diagnosed(mode, tmp_path):
    sc = SCENARIOS[mode]
    r, verdict, run = run_demo(mode, tmp_path)
    assert verdict["at_fault"] == sc.at_fault, verdict["headline"]
    ids = [c["id"] for c in verdict["causes"]]
    if sc.causes:
        assert ids[0] == sc.causes[0], (ids, verdict["headline"])
    if mode == "cors-misconfig":  # the control: the CORS setup is blamed, never the proxy
        assert ids == ["cors-setup"]
        assert not any(row["source"] == "proxy" for row in verdict["cross_table"])
    if mode == "healthy":
        assert ids == [] and all(row["cors"] == "pass" for row in verdict["cross_table"])
    if mode in ("deploy", "worker-recycle"):  # controls: no failures, no cause
        assert ids == [] and all(row["source"] == "app" for row in verdict["cross_table"])
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "complete"
    assert (run / "report" / "report.html").stat().st_size > 10_000
    assert f"at fault: {sc.at_fault}" in r.stdout
    if mode in TARGET_GROUP_MODES:
        assert_target_group_recorded(mode, run, meta)


# The production patterns among targets (issue #10): what the testbed must have recorded.
TARGET_GROUP_MODES = (
    "deploy",
    "deploy-stop-first",
    "deploy-short-drain",
    "deploy-early-register",
    "one-target-bad",
    "worker-kill",
    "worker-recycle",
)


def assert_target_group_recorded(mode: str, run: Path, meta: dict) -> None:
    from core.rundir import RunDir

    rd = RunDir(run)
    targets = meta["testbed"]["targets"]
    assert len(targets) == SCENARIOS[mode].testbed.get("targets", 1)
    requests = rd.read_table("requests").to_pylist()
    app = [q for q in requests if q["source"] == "app"]
    # every app response names its target, and every target served
    assert app and all(q["target"] in targets for q in app)
    assert {q["target"] for q in app} == set(targets)
    assert all(q["target"] is None for q in requests if q["source"] == "proxy")
    health = rd.read_table("health").to_pylist()
    assert {h["target"] for h in health} == set(targets)
    events = rd.read_table("events").to_pylist()
    kinds = [e["kind"] for e in events if e["source"] == "testbed"]
    assert "testbed_error" not in kinds
    if mode.startswith("deploy"):
        assert kinds.count("deploy_finished") == 1
        assert kinds.count("target_healthy") == len(targets)
        assert {h["state"] for h in health} >= {"draining", "initial", "healthy"}
    if mode != "deploy" and mode != "worker-recycle":
        assert any(q["status"] in (502, 503) for q in requests)
    if mode == "worker-kill":
        pids = [
            e["pid"] for e in events if e["kind"] == "worker_killed" and e["source"] == "testbed"
        ]
        log = (run / "logs" / "gunicorn.log").read_text()
        assert pids and all(
            f"Worker (pid:{pid}) was sent SIGKILL! Perhaps out of memory?" in log for pid in pids
        )
    if mode == "worker-recycle":
        log = (run / "logs" / "gunicorn.log").read_text()
        assert "Autorestarting worker after current request." in log  # it did recycle


def test_default_demo_blames_the_proxy_for_target_down_and_capacity(tmp_path):
    r, verdict, run = run_demo("default", tmp_path)
    assert verdict["at_fault"] == "proxy"
    ids = [c["id"] for c in verdict["causes"]]
    assert {"target-down", "capacity"} <= set(ids), (ids, verdict["headline"])
    strong = {c["id"] for c in verdict["causes"] if c["strength"] >= 0.5}
    assert {"target-down", "capacity"} <= strong
    assert "HTML report:" in r.stdout and (run / "report" / "timeline.png").exists()
    # the outage sits inside the safety window: the run completes and shows the recovery
    assert json.loads((run / "run.json").read_text())["status"] == "complete"


def test_http_redirect_names_the_redirected_preflight_and_the_https_fix(tmp_path):
    """The front end calls http://: the testbed's port-80 listener (the ALB's redirect to HTTPS)
    answers every preflight with 301, Chromium refuses it, and the verdict says to call https://."""
    r, verdict, run = run_demo("http-redirect", tmp_path)
    (cause,) = verdict["causes"]
    assert cause["id"] == "http-redirect" and cause["strength"] >= 0.9
    assert "Redirect is not allowed for a preflight request." in cause["evidence"][0]
    assert any("LR--" in e for e in cause["evidence"])  # the proxy log's own redirects
    assert "https://" in cause["fix"]
    assert all(row["source"] == "proxy" for row in verdict["cross_table"])
    meta = json.loads((run / "run.json").read_text())
    assert meta["target"]["listener"] == "http-redirect"
