"""`albprobe replay` end to end on the real testbed (HAProxy -> gunicorn -> Django), as a user runs
it (a child process): one recorded row per sent line, the skipped lines accounted for, lanes kept on
one connection; and a target-down incident recorded by the testbed itself, reproduced with
--with-cause and not without it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from core.rundir import RunDir
from fixtures import alb_window as aw

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
T0 = 1_796_000_000.0


def albprobe(tmp: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "albprobe", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(tmp),
        env=env,
    )


def _known_window() -> list[str]:
    """6 s of traffic with a known shape: 4 keep-alive connections of 3 browsers taking turns
    (preflight then the call), writes, secrets in queries, a request the ALB rejected, a
    '- - -' line and a malformed line."""
    es: list[aw.Entry] = []
    engines = ("chromium", "firefox", "webkit", "chromium")
    for i in range(120):
        client = f"203.0.113.{i % 4}:{41000 + i % 4}"
        at = T0 + i * 0.05
        if i % 10 == 0:
            es.append(
                aw.Entry(
                    at=at,
                    method="OPTIONS",
                    path=f"/v1/items/{i}",
                    client=client,
                    engine=engines[i % 4],
                )
            )
            es.append(
                aw.Entry(
                    at=at + 0.01,
                    method="PATCH",
                    path=f"/v1/items/{i}",
                    client=client,
                    engine=engines[i % 4],
                )
            )
        else:
            es.append(
                aw.Entry(
                    at=at,
                    path=f"/v1/items/{i}?session=abc{i}",
                    client=client,
                    engine=engines[i % 4],
                    target_s=0.02,
                )
            )
    es.append(
        aw.Entry(
            at=T0 + 2.001,
            method=None,
            client="198.51.100.1:1",
            elb_status=400,
            target_status=None,
            target=None,
        )
    )
    es.append(
        aw.Entry(
            at=T0 + 3.001,
            path="/x" * 10,
            client="198.51.100.2:2",
            elb_status=414,
            target_status=None,
            target=None,
        )
    )
    es.sort(key=lambda e: e.at)
    return [aw.line(e) for e in es] + ["garbage line"]


def test_a_known_window_replays_one_row_per_sent_line_and_accounts_for_the_rest(tmp_path):
    aw.write(tmp_path / "logs", _known_window())
    r = albprobe(tmp_path, "replay", "--alb-logs", "logs", "--speed", "2", "--run-id", "known")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    run = tmp_path / "runs" / "known"
    meta = json.loads((run / "run.json").read_text())
    plan = pq.read_table(run / "replay" / "plan.parquet").to_pylist()
    summary = meta["replay"]["plan"]
    # every log line is a plan row, and every row not sent says why
    assert len(plan) == summary["lines"] == 134 and summary["malformed"] == 1
    assert Counter(p["action"] for p in plan) == {"send": 120, "skip-write": 12, "not-forwarded": 2}
    assert "not sent: 12 writes" in r.stdout and "2 requests the ALB never forwarded" in r.stdout
    sent = [p for p in plan if p["action"] == "send"]
    rows = RunDir(run).read_table("requests").to_pylist()
    dropped = meta["counts"]["dropped_iterations"]
    assert meta["counts"]["scheduled_iterations"] == len(sent)
    assert len(rows) + dropped == len(sent)
    # one row per sent line: its kind, method, path and intended time are the line's
    start, speed = meta["replay"]["start"], meta["replay"]["speed"]
    by_key = {(p["kind"], p["path"], round(p["offset_s"] / speed, 4)): p for p in sent}
    lanes: dict[int, set[int]] = {}
    firsts: dict[int, tuple[float, bool]] = {}
    for row in rows:
        p = by_key.pop((row["kind"], row["path"], round(row["intended_ts"] - start, 4)))
        assert row["method"] == p["method"]
        lanes.setdefault(p["lane"], set()).add(row["user_id"])
        if p["lane"] not in firsts or row["intended_ts"] < firsts[p["lane"]][0]:
            firsts[p["lane"]] = (row["intended_ts"], row["conn_reused"])
    assert len(by_key) == dropped
    # a new client:port is a new connection; the lane's later lines reuse it
    assert not any(reused for _, reused in firsts.values())
    assert sum(bool(row["conn_reused"]) for row in rows) >= len(rows) - 2 * len(firsts)
    # secrets replaced on the wire and in the record; preflights sent as preflights
    assert all(
        "session=albprobe-redacted" in row["path"] for row in rows if row["kind"] == "actual"
    )
    assert {row["method"] for row in rows if row["kind"] == "preflight"} == {"OPTIONS"}
    # a connection's lines went out on one simulated browser (a lane never changes user)
    assert lanes and all(len(users) == 1 for users in lanes.values())
    assert "replay: per second" in (run / "report" / "report.html").read_text()
    # `albprobe analyze` of the replay gives the comparison again, offline
    again = albprobe(tmp_path, "analyze", str(run), "--out", str(tmp_path / "again"))
    assert again.returncode == 0 and "replay: status mix" in again.stdout, again.stderr
    summary = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert summary["replay"]["reproduced"]["answer"] == "n/a"
    assert summary["replay"]["fidelity"]["planned"] == len(sent)


def test_a_target_down_incident_is_reproduced_with_the_cause_and_not_without(tmp_path):
    cfg = tmp_path / "albprobe.toml"
    cfg.write_text(
        "[load]\nrate = 20.0\nmax_vus = 20\n[[endpoints]]\nname = 'fast'\npath = '/api/fast'\n"
    )
    r = albprobe(
        tmp_path,
        "run",
        "-c",
        str(cfg),
        "--shape",
        "constant-rate",
        "--duration",
        "11s",
        "--fault",
        "target-down@4s-7s",
        "--run-id",
        "incident",
        "--no-analyze",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    # the incident's ALB log: the testbed run's requests as the ALB logs them
    aw.write(tmp_path / "logs", aw.lines_from_run(tmp_path / "runs" / "incident"))
    without = albprobe(
        tmp_path, "replay", "-c", str(cfg), "--alb-logs", "logs", "--run-id", "plain"
    )
    assert without.returncode == 0, without.stdout[-3000:] + without.stderr[-3000:]
    assert "target-down" in without.stdout and "--with-cause" in without.stdout
    assert "reproduced: no" in without.stdout
    withc = albprobe(
        tmp_path,
        "replay",
        "-c",
        str(cfg),
        "--alb-logs",
        "logs",
        "--with-cause",
        "--run-id",
        "cause",
    )
    assert withc.returncode == 0, withc.stdout[-3000:] + withc.stderr[-3000:]
    assert "reproduced: yes" in withc.stdout, withc.stdout[-3000:]
    summary = json.loads((tmp_path / "runs" / "cause" / "report" / "summary.json").read_text())
    assert summary["replay"]["reproduced"]["answer"] == "yes"
    assert summary["at_fault"] == "proxy" and summary["causes"][0]["id"] == "target-down"
