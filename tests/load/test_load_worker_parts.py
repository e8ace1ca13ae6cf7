"""Worker-parts mode (docs/distributed.md): each Locust worker writes its own Parquet parts (a
folder or s3://), the master records where; the run directory still reads as one run and its
rows still equal Locust's count. Real master and worker processes; moto's server for S3."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import boto3
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from albprobe.cli import main
from testbed.fixed import FixedResponseProxy
from testbed.ports import free_port
from tests.aws.conftest import moto_url  # noqa: F401  (the AWS area's session-wide moto server)
from tests.load.load_helpers import read_json, wait_for_requests, wait_until

REPO = Path(__file__).resolve().parents[2]
LOCUSTFILE = str(REPO / "locustfiles" / "browser.py")
SLOW_WORKER = str(Path(__file__).with_name("slow_worker.py"))
REGION = "us-east-2"
pytestmark = pytest.mark.slow

CONFIG = """
[load]
think_time = 0.02
users = 4
spawn_rate = 4
duration = "{duration}"
[[endpoints]]
name = "fast"
path = "/api/fast"
"""


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("ALBPROBE_CONFIG", None)
    env.update(extra)
    return env


def _locust(
    tmp: Path, port: int, role: list[str], env: dict[str, str], **popen
) -> subprocess.Popen:
    files = LOCUSTFILE + (f",{SLOW_WORKER}" if "ALBPROBE_TEST_COUNTS" in env else "")
    return subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", files, *role],
        cwd=str(tmp),
        env=env,
        text=True,
        **popen,
    )


def _master(tmp: Path, port: int, host: str, cfg: Path, env: dict[str, str], *extra: str):
    role = [
        "--master",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        str(port),
        "--expect-workers",
        "2",
        "--headless",
        "--only-summary",
        "--host",
        host,
        "--albprobe-config",
        str(cfg),
        "--albprobe-shape",
        "users",
        "--albprobe-processes",
        "2",
        *extra,
    ]
    return _locust(tmp, port, role, env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _worker(tmp: Path, port: int, env: dict[str, str]) -> subprocess.Popen:
    role = ["--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
    return _locust(tmp, port, role, env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _distributed(
    tmp: Path,
    host: str,
    cfg: Path,
    env: dict[str, str],
    *extra: str,
    during: Callable[[subprocess.Popen, list[subprocess.Popen]], None] | None = None,
) -> str:
    """A master and two workers (this test's own processes) to the end of the shape;
    ``during(master, workers)`` acts on them meanwhile."""
    port = free_port()
    master = _master(tmp, port, host, cfg, env, *extra)
    workers = [_worker(tmp, port, env) for _ in range(2)]
    try:
        if during is not None:
            during(master, workers)
        out, _ = master.communicate(timeout=120)
    finally:
        for p in [master, *workers]:
            if p.poll() is None:
                p.kill()
            p.wait(10)
    return out


def _both_have_parts(runs: Path) -> bool:
    """The manifest lists a part of each worker."""
    for manifest in runs.glob("*/parts.json"):
        workers = (read_json(manifest) or {}).get("workers", {})
        if {w for w, v in workers.items() if v.get("parts")} >= {"w0", "w1"}:
            return True
    return False


def _slow_worker_run(
    tmp: Path, duration: str, *extra: str, **knobs: str
) -> tuple[str, Path, dict, list[int]]:
    """A distributed run with tests/load/slow_worker.py beside the locustfile (``knobs``: its
    environment variables): the master's output, the run, its run.json, and the requests each
    worker says it made."""
    cfg = tmp / "c.toml"
    cfg.write_text(CONFIG.format(duration=duration))
    counts = tmp / "counts"
    counts.mkdir()
    env = _env(ALBPROBE_TEST_COUNTS=str(counts), **knobs)
    with FixedResponseProxy() as fx:
        out = _distributed(tmp, fx.url, cfg, env, *extra)
    run = _only_run(tmp)
    made = [int(p.read_text()) for p in counts.iterdir()]
    return out, run, json.loads((run / "run.json").read_text()), made


def _only_run(tmp: Path) -> Path:
    (run,) = (tmp / "runs").iterdir()
    return run


def _rows(run: Path) -> list[tuple]:
    glob = str(run / "requests" / "*.parquet")
    return duckdb.sql(
        f"select worker_id, count(*) from read_parquet('{glob}') group by all order by 1"
    ).fetchall()


def _shipped_copy(run: Path, dest: Path) -> Path:
    """The same run as the shipped-rows mode leaves it: one run directory whose requests are
    the master's own parts (the workers' rows, in one part), no manifest."""
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("requests", "parts.json", "report"))
    tables = [pq.read_table(p) for p in sorted((run / "requests").glob("*.parquet"))]
    (dest / "requests").mkdir()
    pq.write_table(pa.concat_tables(tables), dest / "requests" / "part-00000.parquet")
    return dest


def _figures(run: Path, out: Path) -> dict:
    assert main(["analyze", str(run), "--out", str(out), "--json"]) == 0
    return json.loads((out / "summary.json").read_text())["figures"]


def test_workers_write_their_parts_to_a_folder(tmp_path, capsys):
    """Plain `locust`: the workers' parts land in DEST/<run>/<worker>/requests, the master links
    them into its run directory (nothing rode in the reports), rows == Locust's count, and
    analyze gives the figures it gives the same rows written by the master."""
    cfg = tmp_path / "p.toml"
    cfg.write_text(CONFIG.format(duration="4s"))
    dest = tmp_path / "parts"
    with FixedResponseProxy() as fx:
        out = _distributed(tmp_path, fx.url, cfg, _env(), "--albprobe-worker-parts", str(dest))
    run = _only_run(tmp_path)
    meta = json.loads((run / "run.json").read_text())
    rows = _rows(run)
    assert [w for w, _ in rows] == ["w0", "w1"], out[-3000:]
    total = sum(n for _, n in rows)
    assert total == meta["counts"]["requests"] == meta["counts"]["locust_requests"] > 20
    assert meta["status"] == "complete", meta["status_reason"]
    # the master wrote no row itself: every part in requests/ is a worker's
    names = sorted(p.name for p in (run / "requests").glob("*.parquet"))
    assert names and all(n.startswith(("w0-part-", "w1-part-")) for n in names), names
    manifest = json.loads((run / "parts.json").read_text())
    assert manifest["rows"] == total and set(manifest["workers"]) == {"w0", "w1"}
    for wid, w in manifest["workers"].items():
        assert Path(w["location"]) == dest.resolve() / run.name / wid
        assert len(list(Path(w["location"], "requests").glob("part-*.parquet"))) == len(w["parts"])
    assert meta["worker_parts"]["workers"]["w0"]["rows"] == dict(rows)["w0"]
    assert _figures(run, tmp_path / "r1") == _figures(
        _shipped_copy(run, tmp_path / "shipped"), tmp_path / "r2"
    )


@pytest.mark.parametrize("mode", ["shipped-rows", "worker-parts"])
def test_late_final_reports_are_waited_for(tmp_path, mode):
    """Workers whose final report comes 2 s after `quit` (Locust's master waits 0.5 s by itself):
    the master waits for it, so every request a worker made is a row of the run, and every part
    a worker wrote is in the manifest."""
    dest = tmp_path / "parts"
    extra = ("--albprobe-worker-parts", str(dest)) if mode == "worker-parts" else ()
    out, run, meta, made = _slow_worker_run(tmp_path, "4s", *extra, ALBPROBE_TEST_LATE_REPORT_S="2")
    assert len(made) == 2, out[-3000:]
    rows = sum(n for _, n in _rows(run))
    assert rows == sum(made) == meta["counts"]["locust_requests"] > 20, (made, out[-3000:])
    assert meta["status"] == "complete", meta["status_reason"]
    if mode == "worker-parts":
        manifest = json.loads((run / "parts.json").read_text())
        listed = {
            Path(w["location"], n) for w in manifest["workers"].values() for n, _ in w["parts"]
        }
        assert listed == set(dest.glob("*/*/requests/part-*.parquet"))


def test_a_worker_that_dies_leaves_a_partial_run_with_its_parts(tmp_path):
    """A worker killed mid-run: the parts it reported are in the run, the run is partial with
    the gap, and what Locust counted is what the parts hold."""
    cfg = tmp_path / "d.toml"
    cfg.write_text(CONFIG.format(duration="10s"))
    dest = tmp_path / "parts"

    def kill_w0(master: subprocess.Popen, workers: list[subprocess.Popen]) -> None:
        # once each worker has reported a part: a worker killed before its first report has
        # none in the run, which this test does not mean
        wait_until(lambda: _both_have_parts(tmp_path / "runs"), master, "part of each worker")
        workers[0].kill()

    with FixedResponseProxy() as fx:
        out = _distributed(
            tmp_path, fx.url, cfg, _env(), "--albprobe-worker-parts", str(dest), during=kill_w0
        )
    run = _only_run(tmp_path)
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "partial", out[-3000:]
    assert meta["status_reason"].startswith("lost Locust worker w")
    rows = dict(_rows(run))
    assert set(rows) == {"w0", "w1"}  # the dead worker's reported parts are there
    assert sum(rows.values()) == meta["counts"]["requests"] == meta["counts"]["locust_requests"]


def test_a_slow_worker_start_is_not_load_time(tmp_path):
    """A worker whose test start takes 5 s (a busy machine, boto3's import, a slow S3 check)
    in a 3-s run: the duration counts from the moment both workers are ready, so the slow one
    loads too (with Locust's clock it made no request at all), and the run is complete."""
    out, run, meta, made = _slow_worker_run(tmp_path, "3s", ALBPROBE_TEST_SLOW_START_S="5")
    rows = dict(_rows(run))
    assert set(rows) == {"w0", "w1"} and rows["w0"] > 0, (rows, out[-3000:])
    assert sum(rows.values()) == sum(made) == meta["counts"]["locust_requests"]
    assert meta["status"] == "complete", meta["status_reason"]
    ((first_w0,),) = duckdb.sql(
        f"select min(ts) from read_parquet('{run}/requests/*.parquet') where worker_id = 'w0'"
    ).fetchall()
    assert first_w0 - meta["started_at"] >= 5  # the slow start happened, after the test start


def test_a_worker_silent_for_seconds_is_not_lost(tmp_path):
    """A worker stopped for 5 s (SIGSTOP; starved of CPU, a long GC pause) and then resumed: with
    Locust's 3-s heartbeat liveness the master counted it missing, moved its users and marked
    the run partial for a load that never stopped; albprobe's master waits 10 s (5 s of margin
    for a busy machine's own delays)."""
    cfg = tmp_path / "q.toml"
    cfg.write_text(CONFIG.format(duration="12s"))

    def pause_w0(master: subprocess.Popen, workers: list[subprocess.Popen]) -> None:
        wait_for_requests(tmp_path / "runs", 40, master, pattern="*/progress.json")
        workers[0].send_signal(signal.SIGSTOP)  # a process this test started
        try:
            time.sleep(5)  # the silence under test, not a wait for a condition
        finally:
            workers[0].send_signal(signal.SIGCONT)

    with FixedResponseProxy() as fx:
        out = _distributed(tmp_path, fx.url, cfg, _env(), during=pause_w0)
    run = _only_run(tmp_path)
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "complete", (meta["status_reason"], out[-3000:])
    assert meta["workers"]["gaps"] == [] and "failed to send heartbeat" not in out
    rows = dict(_rows(run))
    assert set(rows) == {"w0", "w1"}
    assert sum(rows.values()) == meta["counts"]["requests"] == meta["counts"]["locust_requests"]


def test_a_worker_that_dies_at_the_end_is_a_gap(tmp_path):
    """A worker that dies at the run's end, before its final report: its silence never lasted
    long enough to make it missing while the load ran, so only the master's wait for the final
    reports sees it. The run is partial with a gap for it, and rows == Locust's count."""
    out, run, meta, _ = _slow_worker_run(tmp_path, "3s", ALBPROBE_TEST_W0_DIES_AT_QUIT="1")
    assert meta["status"] == "partial", out[-3000:]
    (gap,) = meta["workers"]["gaps"]
    assert gap["worker_id"] == "w0" and gap["reason"] == "no final report"
    assert meta["status_reason"].startswith("lost Locust worker w0 from ")
    rows = sum(n for _, n in _rows(run))
    assert rows == meta["counts"]["requests"] == meta["counts"]["locust_requests"]


def test_rows_short_of_locusts_count_make_the_run_partial(tmp_path):
    """The master loses the rows of one report (as a master past its ceiling does) while Locust
    counts them: the run is partial, says how many rows it has of how many, and names the fix."""
    out, run, meta, made = _slow_worker_run(tmp_path, "3s", ALBPROBE_TEST_MASTER_DROPS_ROWS="1")
    rows = sum(n for _, n in _rows(run))
    assert rows == meta["counts"]["requests"] < meta["counts"]["locust_requests"] == sum(made)
    assert meta["status"] == "partial", out[-3000:]
    reason = meta["status_reason"]
    assert reason.startswith(f"recorded {rows:,} of the {sum(made):,} requests Locust counted")
    assert "worker-parts mode" in reason


@pytest.fixture
def s3_dest(moto_url, monkeypatch):  # noqa: F811
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    env = {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": "/nonexistent/albprobe-test-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/albprobe-test-credentials",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_url)
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(
            Bucket="albprobe-parts", CreateBucketConfiguration={"LocationConstraint": REGION}
        )
    return "s3://albprobe-parts/runs", env, s3


def test_workers_write_their_parts_to_s3(tmp_path, s3_dest):
    """s3:// DEST: the parts are uploaded by the workers, the master lists them, run.json counts
    them, and `albprobe analyze` downloads them and reads the run as one."""
    dest, env, s3 = s3_dest
    cfg = tmp_path / "s.toml"
    cfg.write_text(CONFIG.format(duration="5s"))
    with FixedResponseProxy() as fx:
        out = _distributed(
            tmp_path, fx.url, cfg, _env(**env), "--albprobe-worker-parts", dest + "/"
        )
    run = _only_run(tmp_path)
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "complete", out[-3000:]
    assert meta["counts"]["requests"] == meta["counts"]["locust_requests"] > 20
    assert not list((run / "requests").glob("*.parquet"))  # on S3 until analyze fetches them
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket="albprobe-parts", Prefix=f"runs/{run.name}/")["Contents"]
    ]
    manifest = json.loads((run / "parts.json").read_text())
    listed = {
        f"{w['location']}/{name}" for w in manifest["workers"].values() for name, _ in w["parts"]
    }
    assert listed == {f"s3://albprobe-parts/{k}" for k in keys}
    figures = _figures(run, tmp_path / "rep")
    rows = _rows(run)
    assert [w for w, _ in rows] == ["w0", "w1"]
    assert sum(n for _, n in rows) == meta["counts"]["locust_requests"]
    assert figures == _figures(_shipped_copy(run, tmp_path / "shipped"), tmp_path / "r2")


def test_a_bad_worker_parts_destination_is_one_line(tmp_path, s3_dest, capsys):
    """`albprobe run` and a plain `locust` master refuse a DEST they cannot write, before any
    load, with one line naming it and the fix."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cases = {
        str(blocker / "sub"): "cannot write there",
        "s3://Not_A_Bucket/x": "is not an S3 bucket name",
        "s3://no-such-bucket-albprobe/x": "NoSuchBucket",
        "gs://bucket/x": "not a local folder or an s3:// URL",
    }
    for dest, why in cases.items():
        rc = main(
            ["run", "--runs-dir", str(tmp_path / "runs"), "--workers", "2"]
            + [
                "--worker-parts",
                dest,
                "--duration",
                "2s",
            ]
        )
        err = capsys.readouterr().err.strip()
        assert rc == 2, err
        assert why in err and dest in err, err
        assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())
    rc = main(["run", "--runs-dir", str(tmp_path / "runs"), "--worker-parts", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "add --workers N" in err, err
    # plain `locust`: the master says it and exits 2
    cfg = tmp_path / "b.toml"
    cfg.write_text(CONFIG.format(duration="2s"))
    port = free_port()
    master = _master(
        tmp_path, port, "http://127.0.0.1:9", cfg, _env(), "--albprobe-worker-parts", str(blocker)
    )
    out, _ = master.communicate(timeout=60)
    assert master.returncode == 2, out
    line = [ln for ln in out.splitlines() if "albprobe: error" in ln]
    assert line and str(blocker) in line[0] and "cannot write there" in line[0], out
    assert "Traceback" not in out, out


def test_albprobe_run_with_worker_parts(cli, tmp_path):
    """`albprobe run --workers 2 --worker-parts DEST` against the testbed: a complete run whose
    rows (the workers' parts, linked in) equal Locust's count, analysed at the end."""
    cfg = tmp_path / "r.toml"
    cfg.write_text(CONFIG.format(duration="5s"))
    dest = tmp_path / "parts"
    r = cli.run(
        *cli.users_run(
            cfg, "wp", users=4, duration="5s", extra=("--workers", "2", "--worker-parts", str(dest))
        )
    )
    assert r.returncode == 0, r.stderr[-2000:]
    meta = cli.meta("wp")
    (rows,) = cli.sql("wp", "select count(*) from REQ")[0]
    assert meta["status"] == "complete"
    assert rows == meta["counts"]["requests"] == meta["counts"]["locust_requests"] > 20
    assert {w for (w,) in cli.sql("wp", "select distinct worker_id from REQ")} == {"w0", "w1"}
    assert meta["worker_parts"]["dest"] == str(dest) and meta["worker_parts"]["missing"] == []
    assert meta["worker_parts"]["rows"] == rows
    assert (dest / "wp" / "w0" / "requests").is_dir()
    summary = json.loads((cli.runs / "wp" / "report" / "summary.json").read_text())
    assert summary["figures"]["requests"] == rows
