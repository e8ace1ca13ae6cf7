"""`albprobe run` end to end against the testbed: recording, distribution, interruption, abort, safety."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from tests.load.load_helpers import stop_gently

pytestmark = pytest.mark.slow


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


LIGHT = """
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


def test_target_down_mid_run_records_proxy_502s_with_cors_fail(cli, tmp_path):
    cfg = write_config(tmp_path / "a.toml", LIGHT)
    r = cli.run(
        *cli.users_run(
            cfg,
            "down",
            users=4,
            duration="9s",
            extra=("--fault", "target-down@3s-6s"),
        )
    )
    assert r.returncode == 0, r.stderr[-2000:]
    meta = cli.meta("down")
    assert (
        meta["status"] == "complete"
        and meta["counts"]["requests"] == meta["counts"]["locust_requests"]
    )
    (n502,) = cli.sql(
        "down", "select count(*) from REQ where status = 502 and source = 'proxy' and not cors_ok"
    )[0]
    assert n502 > 0
    (msg,) = cli.sql("down", "select any_value(cors_message) from REQ where status = 502")[0]
    assert "No 'Access-Control-Allow-Origin' header is present" in msg
    (ok,) = cli.sql("down", "select count(*) from REQ where source = 'app' and cors_ok")[0]
    assert ok > 0
    health = pq.read_table(cli.runs / "down" / "health").to_pydict()
    assert "unhealthy" in health["state"] and "healthy" in health["state"]
    events = duckdb.sql(
        f"select kind from read_parquet('{cli.runs / 'down' / 'events'}/*.parquet')"
    ).fetchall()
    kinds = {k for (k,) in events}
    assert {"fault_on", "fault_off", "target_killed", "target_started"} <= kinds
    assert (cli.runs / "down" / "logs" / "haproxy-1.log").stat().st_size > 0
    assert "at fault: proxy" in r.stdout  # the analyzer's verdict closes the run
    # the CORS misconfiguration scan ran before the load; the testbed's strict list admits nothing
    assert meta["cors_scan"]["findings"] == 0 and meta["security_findings"] == []


def test_distributed_run_dir_is_complete(cli, tmp_path):
    cfg = write_config(tmp_path / "b.toml", LIGHT)
    r = cli.run(
        *cli.users_run(
            cfg,
            "dist",
            users=6,
            duration="8s",
            extra=("--workers", "2"),
        )
    )
    assert r.returncode == 0, r.stderr[-2000:]
    meta = cli.meta("dist")
    summary = json.loads((cli.runs / "dist" / "locust" / "summary.json").read_text())
    (rows,) = cli.sql("dist", "select count(*) from REQ")[0]
    assert rows == summary["locust_requests"] == meta["counts"]["locust_requests"] > 50
    workers = {w for (w,) in cli.sql("dist", "select distinct worker_id from REQ")}
    assert workers == {"w0", "w1"}
    assert meta["workers"]["mode"] == "distributed" and meta["workers"]["gaps"] == []
    # the duration counted from when both workers were ready, and ran its 8 s from there
    clock = meta["workers"]["clock_started_at"]
    assert meta["started_at"] <= clock <= meta["ended_at"] - 8


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def _wait_progress(run_dir: Path, requests: int, timeout: float = 150) -> None:
    """``timeout`` only guards against a hang: next to CPU hogs and a parallel suite, a run's
    first requests took over 30 s."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if json.loads((run_dir / "progress.json").read_text()).get("requests", 0) >= requests:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError("the run never made progress")


def test_a_dead_worker_leaves_a_recorded_gap(cli, tmp_path):
    cfg = write_config(tmp_path / "c.toml", LIGHT)
    p = cli.popen(
        *cli.users_run(
            cfg,
            "gap",
            users=4,
            duration="16s",
            extra=("--workers", "2"),
        )
    )
    try:
        _wait_progress(cli.runs / "gap", 50)
        (master,) = [
            c for c in _children(p.pid) if b"locust" in Path(f"/proc/{c}/cmdline").read_bytes()
        ]
        workers = _children(master)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)  # a process of this test's own tree
        out, err = p.communicate(timeout=90)
    finally:
        stop_gently(p)
    meta = cli.meta("gap")
    assert meta["workers"]["gaps"], err[-2000:]
    gap = meta["workers"]["gaps"][0]
    assert gap["to"] > gap["from"]
    (rows,) = cli.sql("gap", "select count(*) from REQ")[0]
    assert rows == meta["counts"]["locust_requests"]  # what Locust counted is what we recorded
    kinds = duckdb.sql(
        f"select kind from read_parquet('{cli.runs / 'gap' / 'events'}/*.parquet')"
    ).fetchall()
    assert ("worker_gap",) in kinds
    # Half the load vanished: the run says so, and so do the terminal, the verdict and the report.
    assert meta["status"] == "partial" and p.returncode == 1
    assert meta["status_reason"].startswith(f"lost Locust worker {gap['worker_id']} from ")
    assert "status: partial (lost Locust worker" in out
    assert "caveat: load incomplete: lost Locust worker" in " ".join(out.split())
    summary = json.loads((cli.runs / "gap" / "report" / "summary.json").read_text())
    (caveat,) = summary["caveats"]
    assert caveat.startswith(f"load incomplete: lost Locust worker {gap['worker_id']} from ")
    assert summary["figures"]["worker_gap_seconds"] >= int(gap["to"] - gap["from"])
    assert caveat in (cli.runs / "gap" / "report" / "report.html").read_text()


def test_ctrl_c_leaves_a_readable_partial_run_dir(cli, tmp_path):
    cfg = write_config(tmp_path / "d.toml", LIGHT)
    p = cli.popen(*cli.users_run(cfg, "int", users=3, duration="60s"))
    try:
        _wait_progress(cli.runs / "int", 30)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        stop_gently(p)
    assert p.returncode == 130, err[-2000:]
    meta = cli.meta("int")
    assert meta["status"] == "partial" and "Ctrl-C" in meta["status_reason"]
    (rows,) = cli.sql("int", "select count(*) from REQ")[0]
    assert rows >= 30 and rows == meta["counts"]["requests"]
    assert meta["ended_at"] - meta["started_at"] < 40
    assert "Traceback" not in err


def test_sigterm_is_also_finalised_as_partial(cli, tmp_path):
    cfg = write_config(tmp_path / "e.toml", LIGHT)
    p = cli.popen(*cli.users_run(cfg, "term", users=2, duration="60s"))
    try:
        _wait_progress(cli.runs / "term", 20)
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=60)
    finally:
        stop_gently(p)
    meta = cli.meta("term")
    assert meta["status"] == "partial" and meta["status_reason"] == "SIGTERM"
    assert cli.sql("term", "select count(*) from REQ")[0][0] >= 20


def test_abort_threshold_stops_a_run_against_a_dead_target(cli, tmp_path):
    cfg = write_config(
        tmp_path / "f.toml", LIGHT + '\n[safety]\nabort_error_rate = 0.8\nabort_after = "2s"\n'
    )
    r = cli.run(
        *cli.users_run(
            cfg,
            "abort",
            users=3,
            duration="60s",
            extra=("--fault", "target-down@0s"),
        )
    )
    assert r.returncode == 3, r.stderr[-2000:]
    # the load stopped long before its 60 s, on the run's own clock (a wall-clock bound on the
    # whole command also timed the start-up, 42 s beside a CPU hog)
    ((span,),) = cli.sql("abort", "select max(ts) - min(ts) from REQ")
    assert span < 30, span
    meta = cli.meta("abort")
    assert meta["status"] == "aborted" and "error rate stayed" in meta["status_reason"]
    (n502,) = cli.sql("abort", "select count(*) from REQ where status = 502")[0]
    assert n502 > 0  # the data is kept
    ev = duckdb.sql(
        f"select kind, detail from read_parquet('{cli.runs / 'abort' / 'events'}/*.parquet') "
        "where kind = 'abort'"
    ).fetchall()
    assert len(ev) == 1 and "error rate stayed" in ev[0][1]


def test_host_not_on_the_allow_list_is_refused(cli, tmp_path):
    r = cli.run("--target", "https://api.example.com", "--duration", "5s")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert "not on the load allow-list" in r.stderr and "allowed_hosts" in r.stderr
    assert not cli.runs.exists() or not any(cli.runs.iterdir())


def test_open_model_counts_dropped_iterations_and_corrects_latency(cli, tmp_path):
    cfg = write_config(
        tmp_path / "g.toml",
        """
[load]
rate = 20.0
max_vus = 2
[[endpoints]]
name = "slow"
path = "/api/slow?ms=300"
""",
    )
    r = cli.run(
        "--config", str(cfg), "--shape", "constant-rate", "--duration", "6s", "--run-id", "open"
    )
    assert r.returncode == 0, r.stderr[-2000:]
    meta = cli.meta("open")
    assert meta["counts"]["dropped_iterations"] > 40  # ~120 scheduled, ~40 can be served
    assert meta["counts"]["scheduled_iterations"] >= 100
    (n, worse) = cli.sql(
        "open",
        "select count(*), count(*) filter (where co_latency_ms >= latency_ms - 1) "
        "from REQ where intended_ts is not null",
    )[0]
    assert n > 0 and worse == n


def test_secrets_from_the_environment_are_sent_but_never_recorded(cli, tmp_path):
    secret, cookie = "Bearer s3cr3t-token-xyz", "sessionid=c00kie-value-abc"
    cfg = write_config(tmp_path / "h.toml", LIGHT)
    r = cli.run(
        *cli.users_run(cfg, "sec", users=2, duration="3s"),
        ALBPROBE_AUTHORIZATION=secret,
        ALBPROBE_COOKIE=cookie,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    # Authorization makes every call preflighted with it in Access-Control-Request-Headers
    (pre,) = cli.sql("sec", "select count(*) from REQ where kind = 'preflight' and cors_ok")[0]
    assert pre >= 2
    run = cli.runs / "sec"
    for path in run.rglob("*"):
        if path.is_file():
            if path.suffix == ".parquet":
                text = json.dumps(pq.read_table(path).to_pylist(), default=str)
            else:
                text = path.read_bytes().decode("utf-8", "replace")
            assert "s3cr3t" not in text and "c00kie" not in text, path


def test_web_ui_on_request_serves_locusts_ui_and_finishes_by_itself(cli, tmp_path):
    import urllib.request

    cfg = write_config(tmp_path / "w.toml", LIGHT)
    p = cli.popen(
        *cli.users_run(
            cfg,
            "ui",
            users=2,
            duration="6s",
            extra=("--web-ui", "--no-analyze"),
        )
    )
    try:
        _wait_progress(cli.runs / "ui", 10)
        port = int(cli.meta("ui")["web_ui"].rsplit(":", 1)[1])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats/requests", timeout=10) as resp:
            stats = json.loads(resp.read())
        assert stats["state"] in ("running", "spawning") and stats["total_rps"] >= 0
        out, err = p.communicate(timeout=90)
    finally:
        stop_gently(p)
    assert p.returncode == 0, err[-2000:]
    meta = cli.meta("ui")
    assert (
        meta["status"] == "complete"
        and meta["counts"]["requests"] == meta["counts"]["locust_requests"] > 0
    )
    assert "Locust web UI: http://127.0.0.1:" in out
