"""Original vs replay, side by side: per second, the status mix, who generated the 5xx, the top
paths, and whether the 502s came back ("reproduced: yes / partly / no", with the figures and the
tolerances they were judged by).

Seconds are the replay's: second ``s`` holds the original lines whose ``offset_s / speed`` falls
in it (clones included: the log as scaled) and the replay's requests whose *intended* send time
does (a late request stays in the second it belonged to; its lateness is in its latency).
Pure DuckDB over the plan's Parquet file and the run's ``requests`` table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb

from analysis.parsers.common import sql_str

# The tolerances "reproduced" is judged by (docs/replay.md says the same).
START_TOL_S = 2.0  # the replay's first 502 second within this of the original's (replay seconds)
RATE_RATIO = (0.5, 2.0)  # the replay's 502 rate in the burst / the original's
NONE_SHARE = 0.1  # fewer 502s than this share of the original's: not reproduced at all


@dataclass(frozen=True)
class Burst:
    """The 502s of one side: count, first and last replay second, 502s/s inside the burst."""

    count: int
    first_s: float | None
    last_s: float | None

    @property
    def seconds(self) -> float:
        return 0.0 if self.first_s is None else self.last_s - self.first_s + 1  # type: ignore[operator]


@dataclass(frozen=True)
class Reproduced:
    answer: str  # yes | partly | no | n/a
    reason: str
    original: Burst
    replay: Burst
    replay_in_window: int  # replay 502s inside the original's burst, +- START_TOL_S
    start_diff_s: float | None
    rate_ratio: float | None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tolerances"] = {
            "start_s": START_TOL_S,
            "rate_ratio": list(RATE_RATIO),
            "none_below_share": NONE_SHARE,
        }
        return d


def _plan_seconds(plan: Path, speed: float) -> str:
    return (
        f"(SELECT floor(offset_s / {float(speed)!r}) AS s, * FROM read_parquet("
        f"{sql_str(str(plan))}) WHERE action = 'send')"
    )


def original_burst(
    con: duckdb.DuckDBPyConnection, plan: Path, speed: float, *, alb_only: bool = False
) -> Burst:
    """The original's 502s (``alb_only``: ALB-generated 5xx, what a target fault makes) in replay
    seconds."""
    cond = "elb_status >= 500 AND target_status IS NULL" if alb_only else "elb_status = 502"
    row = con.execute(
        f"SELECT count(*), min(s), max(s) FROM {_plan_seconds(plan, speed)} WHERE {cond}"
    ).fetchall()[0]
    return Burst(int(row[0]), row[1], row[2])


# The replay's side of an original 502: a proxy 502, or gunicorn's own 5xx page. On the testbed,
# gunicorn answers a request whose worker it kills at --timeout with its 500 page before the
# worker exits (SIGABRT); the ALB logs the same kill as a 502 with no target status.
REPLAY_502 = "(status = 502 OR (source = 'server' AND status >= 500))"


def _replay_seconds(start: float) -> str:
    return f"(SELECT floor(coalesce(intended_ts, ts) - {float(start)!r}) AS s, * FROM requests)"


def reproduced(
    con: duckdb.DuckDBPyConnection, plan: Path, speed: float, start: float
) -> Reproduced:
    """Did the 502s come back: at the original's time (START_TOL_S) and rate (RATE_RATIO)?"""
    orig = original_burst(con, plan, speed)
    row = con.execute(
        f"SELECT count(*), min(s), max(s) FROM {_replay_seconds(start)} WHERE {REPLAY_502}"
    ).fetchall()[0]
    rep = Burst(int(row[0]), row[1], row[2])
    if not orig.count:
        return Reproduced(
            "n/a", "the original has no 502s: nothing to reproduce", orig, rep, 0, None, None
        )
    lo, hi = orig.first_s - START_TOL_S, orig.last_s + START_TOL_S  # type: ignore[operator]
    inside = int(
        con.execute(
            f"SELECT count(*) FROM {_replay_seconds(start)} WHERE {REPLAY_502} "
            f"AND s BETWEEN {lo!r} AND {hi!r}"
        ).fetchall()[0][0]
    )
    ratio = inside / orig.count
    diff = None if rep.first_s is None else rep.first_s - orig.first_s
    if inside < NONE_SHARE * orig.count:
        return Reproduced(
            "no",
            f"{inside} replay 502s in the original's burst (seconds {orig.first_s:g}-"
            f"{orig.last_s:g} +-{START_TOL_S:g}) against {orig.count} originally: below "
            f"{NONE_SHARE:.0%}",
            orig,
            rep,
            inside,
            diff,
            ratio,
        )
    misses = []
    if diff is None or abs(diff) > START_TOL_S:
        misses.append(
            f"the first 502 came {diff:+g} s from the original's (tolerance {START_TOL_S:g} s)"
        )
    if not RATE_RATIO[0] <= ratio <= RATE_RATIO[1]:
        misses.append(
            f"{ratio:.2f}x the original's 502s in the burst (tolerance {RATE_RATIO[0]:g}-{RATE_RATIO[1]:g}x)"
        )
    figures = (
        f"{inside} replay 502s vs {orig.count} originally in seconds {orig.first_s:g}-"
        f"{orig.last_s:g} (+-{START_TOL_S:g} s), first {diff:+g} s from the original's"
    )
    if misses:
        return Reproduced(
            "partly", f"{figures}; but " + "; ".join(misses), orig, rep, inside, diff, ratio
        )
    return Reproduced("yes", figures, orig, rep, inside, diff, ratio)


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def tables(
    con: duckdb.DuckDBPyConnection, plan: Path, speed: float, start: float
) -> dict[str, list[dict[str, Any]]]:
    """The report's replay section (the `requests` view of a run dataset must be on ``con``)."""
    o, r = _plan_seconds(plan, speed), _replay_seconds(start)
    per_second = _rows(
        con,
        f"""WITH o AS (SELECT s, count(*) AS n, count(*) FILTER (WHERE elb_status >= 500) AS e5,
                        count(*) FILTER (WHERE elb_status = 502) AS e502,
                        quantile_cont(latency_ms, 0.99) AS p99 FROM {o} GROUP BY s),
                r AS (SELECT s, count(*) AS n, count(*) FILTER (WHERE status >= 500) AS e5,
                        count(*) FILTER (WHERE status = 502) AS e502,
                        quantile_cont(coalesce(co_latency_ms, latency_ms), 0.99) AS p99,
                        count(*) FILTER (WHERE ts - intended_ts > 0.010) AS late FROM {r} GROUP BY s)
            SELECT coalesce(o.s, r.s)::BIGINT AS second,
                   coalesce(o.n, 0) AS original_rps, coalesce(r.n, 0) AS replay_rps,
                   coalesce(o.e5, 0) AS original_5xx, coalesce(r.e5, 0) AS replay_5xx,
                   coalesce(o.e502, 0) AS original_502, coalesce(r.e502, 0) AS replay_502,
                   round(o.p99) AS original_p99_ms, round(r.p99) AS replay_p99_ms,
                   coalesce(r.late, 0) AS replay_late_10ms
            FROM o FULL OUTER JOIN r USING (s) ORDER BY 1""",
    )
    status_mix = _rows(
        con,
        f"""WITH o AS (SELECT elb_status AS status, count(*) AS n FROM {o} GROUP BY 1),
                r AS (SELECT status, count(*) AS n FROM {r} GROUP BY 1)
            SELECT coalesce(o.status, r.status) AS status, coalesce(o.n, 0) AS original,
                   coalesce(r.n, 0) AS replay
            FROM o FULL OUTER JOIN r USING (status) ORDER BY 1""",
    )
    split = _rows(
        con,
        f"""SELECT 'original' AS side,
                   count(*) FILTER (WHERE elb_status >= 500 AND target_status IS NULL) AS proxy_5xx,
                   count(*) FILTER (WHERE target_status >= 500) AS target_5xx FROM {o}
            UNION ALL
            SELECT 'replay',
                   count(*) FILTER (WHERE status >= 500 AND source = 'proxy'),
                   count(*) FILTER (WHERE status >= 500 AND source IN ('app', 'server')) FROM {r}""",
    )
    paths = _rows(
        con,
        f"""WITH o AS (SELECT split_part(path, '?', 1) AS path, count(*) AS n,
                        count(*) FILTER (WHERE elb_status >= 500) AS e5 FROM {o} GROUP BY 1),
                r AS (SELECT split_part(path, '?', 1) AS path, count(*) AS n,
                        count(*) FILTER (WHERE status >= 500) AS e5 FROM {r} GROUP BY 1)
            SELECT coalesce(o.path, r.path) AS path, coalesce(o.n, 0) AS original,
                   coalesce(r.n, 0) AS replay, coalesce(o.e5, 0) AS original_5xx,
                   coalesce(r.e5, 0) AS replay_5xx
            FROM o FULL OUTER JOIN r USING (path) ORDER BY 2 DESC, 3 DESC, 1 LIMIT 10""",
    )
    return {
        "replay: per second (original vs replay)": per_second,
        "replay: status mix": status_mix,
        "replay: ALB- vs target-generated 5xx": split,
        "replay: top paths": paths,
    }


def fidelity(
    con: duckdb.DuckDBPyConnection, plan: Path, speed: float, start: float
) -> dict[str, Any]:
    """How faithfully the arrivals were sent: per-second count error vs the log (share of the
    rate), and the send lateness vs the intended time (p50/p99 ms)."""
    o = _plan_seconds(plan, speed)
    row = con.execute(
        f"""WITH o AS (SELECT s, count(*) AS n FROM {o} GROUP BY s),
                 r AS (SELECT floor(ts - {float(start)!r}) AS s, count(*) AS n FROM requests GROUP BY s),
                 j AS (SELECT coalesce(o.n, 0) AS want, coalesce(r.n, 0) AS got
                       FROM o FULL OUTER JOIN r USING (s) WHERE coalesce(o.n, 0) > 0)
            SELECT max(abs(got - want) / want), avg(abs(got - want) / want), count(*),
                   (SELECT quantile_cont((ts - intended_ts) * 1000, 0.5) FROM requests),
                   (SELECT quantile_cont((ts - intended_ts) * 1000, 0.99) FROM requests),
                   (SELECT count(*) FROM requests), (SELECT count(*) FROM {o})
            FROM j"""
    ).fetchall()[0]
    return {
        "max_second_error": row[0],
        "mean_second_error": row[1],
        "seconds": int(row[2] or 0),
        "lateness_p50_ms": row[3],
        "lateness_p99_ms": row[4],
        "sent": int(row[5] or 0),
        "planned": int(row[6] or 0),
    }


def section(
    con: duckdb.DuckDBPyConnection, root: Path, meta: dict[str, Any]
) -> dict[str, Any] | None:
    """The replay section of a run's analysis (None when the run is not a replay): the tables,
    the answer and the fidelity figures. run.json's ``replay`` gives the start and speed."""
    info = meta.get("replay") or {}
    plan = root / "replay" / "plan.parquet"
    if not plan.exists() or info.get("start") is None:
        return None
    speed, start = float(info.get("speed") or 1.0), float(info["start"])
    rep = reproduced(con, plan, speed, start)
    answer = {
        "reproduced": rep.answer,
        "why": rep.reason,
        "original_502": rep.original.count,
        "replay_502": rep.replay.count,
        "tolerances": f"first 502 within {START_TOL_S:g} s; {RATE_RATIO[0]:g}-{RATE_RATIO[1]:g}x the 502s",
    }
    if info.get("not_from_traffic"):
        answer["note"] = info["not_from_traffic"]
    return {
        "reproduced": rep.to_dict(),
        "fidelity": fidelity(con, plan, speed, start),
        "diagnosis": info.get("diagnosis"),
        "tables": {"replay: reproduced?": [answer], **tables(con, plan, speed, start)},
    }
