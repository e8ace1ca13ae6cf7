"""Original vs replay (analysis/replay_compare.py): "reproduced" judged by the stated tolerances,
on a small plan and a small `requests` table (pure DuckDB, no run)."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis import replay_compare as rc

START = 1_000.0


def _plan(path, statuses):
    """One sent line per second, with the original's status at each second."""
    n = len(statuses)
    pq.write_table(
        pa.table(
            {
                "offset_s": [float(i) for i in range(n)],
                "action": ["send"] * n,
                "elb_status": statuses,
                "target_status": [None if s == 502 else s for s in statuses],
                "latency_ms": [5.0] * n,
                "path": ["/a"] * n,
            }
        ),
        path,
    )
    return path


def _con(replay_statuses, *, shift=0, sources=None):
    con = duckdb.connect()
    n = len(replay_statuses)
    t = pa.table(
        {
            "ts": [START + i + shift + 0.001 for i in range(n)],
            "intended_ts": [START + i + shift for i in range(n)],
            "status": replay_statuses,
            "source": sources or ["proxy" if s == 502 else "app" for s in replay_statuses],
            "path": ["/a"] * n,
            "latency_ms": [5.0] * n,
            "co_latency_ms": [6.0] * n,
        }
    )
    con.register("requests", t)
    return con


ORIG = [200] * 10 + [502] * 4 + [200] * 10


@pytest.mark.parametrize(
    "replay, shift, answer",
    [
        (ORIG, 0, "yes"),
        ([200] * 24, 0, "no"),
        (ORIG, 4, "partly"),  # the burst came 4 s late: outside 2 s, but half of it overlaps
        ([200] * 10 + [502, 200, 200, 200] + [200] * 10, 0, "partly"),  # a quarter of the rate
    ],
)
def test_reproduced_yes_partly_no(tmp_path, replay, shift, answer):
    plan = _plan(tmp_path / "p.parquet", ORIG)
    got = rc.reproduced(_con(replay, shift=shift), plan, 1.0, START)
    assert got.answer == answer, got.reason
    assert got.original.count == 4 and (got.original.first_s, got.original.last_s) == (10, 13)


def test_gunicorns_timeout_500s_on_the_testbed_stand_for_the_albs_502s(tmp_path):
    """A worker killed at --timeout: the ALB logs a 502 (no target status), the testbed's
    gunicorn answers its own 500 page first (source 'server'). The app's own 500s are not it."""
    plan = _plan(tmp_path / "p.parquet", ORIG)
    status = [500 if s == 502 else s for s in ORIG]
    for source, answer in (("server", "yes"), ("app", "no")):
        con = _con(status, sources=[source if s == 500 else "app" for s in status])
        assert rc.reproduced(con, plan, 1.0, START).answer == answer


def test_no_502s_in_the_original_is_not_applicable_and_tables_line_up(tmp_path):
    plan = _plan(tmp_path / "p.parquet", [200] * 5)
    con = _con([200, 200, 502, 200, 200])
    assert rc.reproduced(con, plan, 1.0, START).answer == "n/a"
    t = rc.tables(con, plan, 1.0, START)
    per = t["replay: per second (original vs replay)"]
    assert [(r["second"], r["original_rps"], r["replay_rps"], r["replay_502"]) for r in per] == [
        (0, 1, 1, 0),
        (1, 1, 1, 0),
        (2, 1, 1, 1),
        (3, 1, 1, 0),
        (4, 1, 1, 0),
    ]
    assert t["replay: ALB- vs target-generated 5xx"][1] == {
        "side": "replay",
        "proxy_5xx": 1,
        "target_5xx": 0,
    }
    f = rc.fidelity(con, plan, 1.0, START)
    assert f["max_second_error"] == 0 and f["sent"] == f["planned"] == 5
    assert f["lateness_p99_ms"] == pytest.approx(1.0, abs=0.01)
