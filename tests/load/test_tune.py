"""`albprobe tune` as a user runs it, against the real testbed (HAProxy -> gunicorn -> Django).

Known capacity: gunicorn slots / service time behind /api/slow?ms=100 (sleep, so the server and
not the client bounds the rate). Steps are short and the rates small so that a busy machine
still measures the server; the knee must land within +-20 % of the theoretical capacity.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.ports import free_port

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
SLEEP_MS = 100
FAST_STEPS = (
    "--endpoint",
    f"/api/slow?ms={SLEEP_MS}",
    "--slo",
    "p99<500ms",
    "--slo",
    "5xx_rate<0.01",
    "--start-rate",
    "12",
    "--growth",
    "1.5",
    "--resolution",
    "0.15",
    "--step",
    "4s",
    "--steps",
    "6",
)


def tune(tmp: Path, *args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["COLUMNS"] = "200"
    return subprocess.run(
        # not niced: beside CPU hogs a nice-10 tune got a tenth of a core and missed its budget
        [sys.executable, "-m", "albprobe", "tune", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(tmp),
        env=env,
    )


def no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-2000:]


@pytest.mark.parametrize(
    ("worker_class", "workers", "threads"), [("sync", 2, 1), ("gthread", 1, 3)]
)
def test_knee_is_within_20_percent_of_the_theoretical_capacity(
    tmp_path, worker_class, workers, threads
):
    out = tmp_path / "tune"
    proc = tune(
        tmp_path,
        *FAST_STEPS,
        "--worker-class",
        worker_class,
        "--gunicorn-workers",
        str(workers),
        "--threads",
        str(threads),
        "--no-prove",
        "--out",
        str(out),
    )
    no_traceback(proc)
    doc = json.loads((out / "tune.json").read_text())
    capacity = workers * threads / (SLEEP_MS / 1000)
    knee = doc["figures"]["knee_rps"]
    assert knee is not None, doc["statements"]
    assert abs(knee - capacity) / capacity <= 0.2, (knee, capacity, doc["statements"])
    assert doc["before"]["knee"]["bounded"], "a step above the knee must have broken the SLO"
    assert doc["before"]["capacity"]["slots"] == workers * threads
    assert (out / "report.html").exists() and (out / "capacity.png").stat().st_size > 10_000
    assert_one_process_per_pass(out / "steps" / "before", doc["before"]["steps"])
    assert proc.returncode == 0, proc.stdout[-2000:]


def assert_one_process_per_pass(run: Path, steps: list[dict]) -> None:
    """Every step of a pass ran in one Locust process (one ordinary run directory of the
    rate-steps shape, one Locust start), each judged from the rows of its own window."""
    import duckdb

    assert [p.name for p in run.parent.iterdir() if p.name.startswith(run.name)] == [run.name]
    meta = json.loads((run / "run.json").read_text())
    assert meta["shape"]["name"] == "rate-steps" and meta["status"] == "complete"
    assert (run / "locust" / "locust.log").read_text().count("Starting Locust") == 1
    windows = [
        json.loads((run / "locust" / "steps" / f"done-{i:02d}.json").read_text())
        for i in range(1, len(steps) + 1)
    ]
    assert [w["rate"] for w in windows] == [s["offered_rps"] for s in steps]
    assert all(a["end"] <= b["start"] for a, b in zip(windows, windows[1:], strict=False))
    glob = str(run / "requests" / "*.parquet")
    for w, step in zip(windows, steps, strict=True):
        ((n,),) = duckdb.sql(
            f"select count(*) from read_parquet('{glob}') where kind = 'actual' "
            f"and intended_ts >= {w['start']!r} and intended_ts < {w['end']!r}"
        ).fetchall()
        assert n == step["requests"] > 0
        assert step["scheduled"] == w["scheduled"] >= n


def test_proof_at_the_recommended_setting_holds_the_slo_at_the_target(tmp_path):
    out = tmp_path / "tune"
    proc = tune(
        tmp_path,
        *FAST_STEPS,
        "--worker-class",
        "sync",
        "--gunicorn-workers",
        "2",
        "--target-rps",
        "30",
        "--fail-on",
        "knee_rps<10",
        "--out",
        str(out),
    )
    no_traceback(proc)
    doc = json.loads((out / "tune.json").read_text())
    rec = doc["recommendation"]
    # The sleep endpoint is I/O-bound: the measured CPU share is small and gthread is chosen.
    assert doc["measurements"]["cpu_share"] < 0.5
    assert rec["worker_class"] == "gthread" and rec["capacity_rps"] >= 30 * 1.3
    assert doc["measurements"]["memory"]["per_worker_mb"] > 5  # PSS of real Django workers
    assert rec["memory_total_mb"] == pytest.approx(
        rec["workers"] * doc["measurements"]["memory"]["per_worker_mb"]
    )
    after = doc["after"]
    assert_one_process_per_pass(out / "steps" / "before", doc["before"]["steps"])
    assert_one_process_per_pass(out / "steps" / "after", after["steps"])
    assert after["capacity"] == {
        "worker_class": rec["worker_class"],
        "workers": rec["workers"],
        "threads": rec["threads"],
        "slots": rec["workers"] * rec["threads"],
        "keepalive": rec["keepalive"],
    }
    assert rec["keepalive"] > 60  # outlasts the proxy's idle timeout: no keep-alive race
    assert doc["proof"] == {"target_rps": 30.0, "holds": True}
    at_target = next(s for s in after["steps"] if s["offered_rps"] == 30)
    assert at_target["slo"]["holds"] and at_target["throughput_rps"] >= 27
    # the same steps as before, plus the target
    assert {s["offered_rps"] for s in after["steps"]} == {
        s["offered_rps"] for s in doc["before"]["steps"]
    } | {30.0}
    assert doc["fail_on"] == [
        {"threshold": "knee_rps<10", "value": doc["figures"]["knee_rps"], "breached": False}
    ]
    assert "proof:" in proc.stdout and "before: knee" in proc.stdout, proc.stdout[-2000:]
    assert proc.returncode == 0, proc.stdout[-2000:]


def test_an_unreadable_slo_is_one_line_before_any_load(tmp_path):
    proc = tune(tmp_path, "--slo", "p99 under 800ms", "--out", str(tmp_path / "t"), timeout=200)
    no_traceback(proc)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--slo 'p99 under 800ms': cannot read this SLO" in lines[0]
    assert not (tmp_path / "t").exists()


def test_a_bad_gate_is_one_line(tmp_path):
    proc = tune(tmp_path, "--fail-on", "knee<200", timeout=200)
    no_traceback(proc)
    assert proc.returncode == 2 and "--fail-on 'knee<200'" in proc.stderr
    assert "knee_rps" in proc.stderr  # the hint lists the tuning metrics


def test_missing_the_slo_at_the_lowest_step_is_a_plain_statement(tmp_path):
    out = tmp_path / "tune"
    proc = tune(
        tmp_path,
        "--endpoint",
        "/api/slow?ms=700",
        "--slo",
        "p99<300ms",
        "--start-rate",
        "2",
        "--step",
        "3s",
        "--out",
        str(out),
        timeout=240,
    )
    no_traceback(proc)
    assert proc.returncode == 1
    assert "the target misses the SLO even at the lowest step (2 req/s" in proc.stdout
    assert "no recommendation" in proc.stdout
    doc = json.loads((out / "tune.json").read_text())
    assert doc["figures"]["knee_rps"] is None and len(doc["before"]["steps"]) == 1


def test_a_step_cut_short_by_the_abort_rule_is_a_plain_statement(tmp_path):
    cfg = tmp_path / "albprobe.toml"
    cfg.write_text("[safety]\nabort_error_rate = 0.5\nabort_after = '2s'\n")
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: every request is refused
    out = tmp_path / "tune"
    proc = tune(
        tmp_path,
        "--config",
        str(cfg),
        "--target",
        dead,
        "--endpoint",
        "/api/fast",
        "--start-rate",
        "10",
        "--step",
        "20s",
        "--out",
        str(out),
        timeout=240,
    )
    no_traceback(proc)
    assert proc.returncode == 1
    assert "was cut short by the abort rule" in proc.stdout
    doc = json.loads((out / "tune.json").read_text())
    (step,) = doc["before"]["steps"]
    assert step["status"] == "aborted" and step["window_s"] is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--growth", "1"), "--growth must be > 1"),
        (("--max-rate", "5000"), "--max-rate 5000 is above safety.max_rps = 2000"),
        (("--cpu-share", "2"), "--cpu-share must be in (0, 1]"),
        (("--worker-class", "gevent"), "--worker-class 'gevent': sync or gthread"),
        (("--step", "1s"), "--step must be at least 2s"),
        (("--ssm-stats",), "--ssm-stats reads a real target's containers"),
        (("--target-rps", "3000"), "--target-rps 3000 is above safety.max_rps = 2000"),
    ],
)
def test_bad_tuning_options_are_one_line_before_any_load(tmp_path, args, message):
    out = tmp_path / "t"
    proc = tune(tmp_path, *args, "--out", str(out), timeout=200)
    no_traceback(proc)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not (out / "steps").exists()  # nothing was loaded


def test_a_cpu_bound_endpoint_is_measured_as_such_and_gets_sync_workers(tmp_path):
    # /api/cpu burns 50 ms of CPU per request: the workers' /proc CPU time says so, and threads
    # would only queue on the GIL (the sleeping endpoint gets gthread: the proof test above).
    out = tmp_path / "tune"
    proc = tune(
        tmp_path,
        *("--endpoint", "/api/cpu?ms=50", "--worker-class", "sync", "--gunicorn-workers", "2"),
        *("--slo", "p99<2s", "--start-rate", "4", "--steps", "2", "--step", "4s", "--no-prove"),
        *("--out", str(out)),
        timeout=180,
    )
    no_traceback(proc)
    doc = json.loads((out / "tune.json").read_text())
    assert doc["measurements"]["cpu_share"] > 0.5, doc["measurements"]
    assert doc["recommendation"]["worker_class"] == "sync"
    assert "CPU-bound" in doc["recommendation"]["why_class"]
    assert doc["before"]["usl"]["supported"] is False  # two steps: a plain statement, no numbers
    assert doc["before"]["usl"]["sigma"] is None
