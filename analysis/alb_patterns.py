"""What an ALB access log alone shows of an incident: per target, when it served, when it failed
and how (the kind of each ALB 5xx), and across targets, the seconds with no routable target.

The log-only causes (analysis/causes/) read these figures; the report draws the per-target,
per-second 5xx from ``heat``. Pure over the dataset's ``alb`` table (analysis/dataset.py); the
kinds of a target-closed 502 come from the one definition in analysis/parsers/alb.py.

Facts the kinds rest on (shared/reference/aws-alb.md §1, §2.3):
* 502, target ``-``, -1/-1/-1: the ALB could not connect (RST, unreachable);
* 502, target ``-``, dispatched, response -1: the target closed with the request outstanding;
* 503, target ``-``: no registered target, or all ``unused`` (an unhealthy one still gets traffic:
  the ALB fails open);
* 504, target ``-``: request_processing_time -1 = no connection within 10 s; dispatched = the
  target did not answer within the idle timeout.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb
import numpy as np

from analysis.parsers import alb

# A target "gone" / "appeared": no line of it in its last/first this many seconds while others
# served (and its own rate would have given >= GAP_EXPECTED lines in that time).
MIN_GAP_S = 5.0
GAP_EXPECTED = 10.0
# A burst: the failing seconds of a target, no more than this apart.
BURST_JOIN_S = 5
CONNECT_TIMEOUT_S = 10.0  # the ALB's connect timeout (504 with request_processing_time -1)

KINDS = (
    "closed_at_once",  # keep-alive signature: closed within RACE_MAX_S of dispatch
    "closed_mid_request",  # closed after processing, before gunicorn's timeout
    "timeout_kill",  # closed at gunicorn's --timeout
    "connect_fail",  # 502 -1/-1/-1
    "connect_timeout",  # 504, never dispatched
    "response_timeout",  # 504 after dispatch: the idle timeout
    "no_target",  # 503, target '-'
    "target_5xx",  # the target's own 5xx
)


def _kind_sql(timeout_s: float) -> str:
    closed = alb.target_closed_kind_sql(timeout_s)
    return f"""CASE
      WHEN {closed} = 'keepalive-race' THEN 'closed_at_once'
      WHEN {closed} = 'timeout-kill' THEN 'timeout_kill'
      WHEN {closed} = 'closed-late' THEN 'closed_mid_request'
      WHEN {alb.CONNECT_FAILED_SQL} THEN 'connect_fail'
      WHEN elb_status_code = 504 AND target_status_code IS NULL
           AND request_processing_time = -1 THEN 'connect_timeout'
      WHEN elb_status_code = 504 AND target_status_code IS NULL THEN 'response_timeout'
      WHEN elb_status_code = 503 AND target_status_code IS NULL THEN 'no_target'
      WHEN target_status_code >= 500 THEN 'target_5xx'
    END"""


@dataclass(frozen=True)
class TargetLife:
    """One target as the log saw it."""

    target: str
    requests: int
    ok: int  # answered below 500
    first_ts: float
    last_ts: float
    fails: dict[str, int]  # kind -> count
    fail_first_ts: float | None  # its first ALB-generated 5xx
    fail_last_ts: float | None
    fail_seconds: int  # seconds with at least one of its ALB-generated 5xx
    fail_max_per_s: int
    burst_s: float  # the longest run of its failing seconds (gaps <= BURST_JOIN_S joined)
    during_fail: int  # its lines from its first to its last ALB-generated 5xx
    ok_after_fail: int  # answered below 500 after its last failure
    gaps: list[tuple[float, float]]  # (left, back): it was away while the others served
    gone: bool  # disappeared before the window's end while the others served
    appeared: bool  # appeared after the window's start while the others served
    median_close_s: float | None  # seconds from dispatch to the close, target-closed 502s

    @property
    def failed(self) -> int:
        return sum(self.fails.values())


@dataclass
class AlbPatterns:
    first_ts: float
    last_ts: float
    entries: int
    targets: list[TargetLife] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)  # kind -> count, every target
    no_target_first_ts: float | None = None
    no_target_last_ts: float | None = None
    no_target_seconds: int = 0
    served_during_no_target: int = 0  # lines a target answered in the 503 seconds
    closed_at_once_targets: int = 0  # targets with keep-alive-signature closes
    closed_at_once_first_ts: float | None = None
    closed_at_once_last_ts: float | None = None
    closed_at_once_spread: float | None = None  # seconds with such closes / closes (1 = sporadic)
    response_timeout_median_s: float | None = None  # dispatch to the 504
    response_timeout_first_ts: float | None = None
    response_timeout_last_ts: float | None = None
    response_timeout_top_url_share: float | None = None  # share of those 504s on one URL
    response_timeout_top_url: str | None = None
    latency_climb: float | None = None  # p50 target time before the failures / at the start
    latency_p90_before_fail_s: float | None = None
    fail_first_ts: float | None = None  # first ALB-generated 5xx (not the target's own)
    fail_last_ts: float | None = None

    @property
    def failed(self) -> int:
        return sum(self.kinds.values())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def _burst(seconds: list[int]) -> float:
    """The longest run of failing seconds, gaps up to BURST_JOIN_S joined."""
    if not seconds:
        return 0.0
    best = 1.0
    start = prev = seconds[0]
    for s in seconds[1:]:
        if s - prev > BURST_JOIN_S:
            start = s
        prev = s
        best = max(best, float(prev - start + 1))
    return best


def _gaps(
    ts: np.ndarray, others: np.ndarray, t0: float, t1: float
) -> tuple[list[tuple[float, float]], bool, bool]:
    """(internal gaps, gone at the end, appeared after the start) of one target's line times,
    counted only where the other targets served meanwhile (the load, not the target, paused)."""
    if ts.size < 2:
        return [], False, False
    rate = ts.size / max(1.0, ts[-1] - ts[0])
    min_gap = max(MIN_GAP_S, GAP_EXPECTED / rate)

    def others_served(a: float, b: float) -> bool:
        i, j = np.searchsorted(others, [a, b])
        return (j - i) >= GAP_EXPECTED

    d = np.diff(ts)
    gaps = [
        (float(ts[k]), float(ts[k + 1]))
        for k in np.where(d > min_gap)[0]
        if others_served(float(ts[k]) + 1, float(ts[k + 1]) - 1)
    ]
    gone = t1 - ts[-1] > min_gap and others_served(float(ts[-1]) + 1, t1)
    appeared = ts[0] - t0 > min_gap and others_served(t0, float(ts[0]) - 1)
    return gaps, bool(gone), bool(appeared)


def compute(con: duckdb.DuckDBPyConnection, timeout_s: float) -> AlbPatterns | None:
    """The figures of the ``alb`` table; None when it has no entry."""
    kind = _kind_sql(timeout_s)
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW _alb_kinds AS
            SELECT ts, target_port, elb_status_code, target_processing_time, request,
                   {alb.closed_after_sql()} AS closed_after, {kind} AS kind FROM alb
            WHERE ts IS NOT NULL"""
    )
    head = _rows(con, "SELECT count(*) AS n, min(ts) AS t0, max(ts) AS t1 FROM _alb_kinds")[0]
    if not head["n"]:
        return None
    t0, t1 = float(head["t0"]), float(head["t1"])
    pat = AlbPatterns(first_ts=t0, last_ts=t1, entries=int(head["n"]))
    pat.kinds = {
        r["kind"]: int(r["n"])
        for r in _rows(
            con,
            "SELECT kind, count(*) AS n FROM _alb_kinds WHERE kind IS NOT NULL GROUP BY 1",
        )
    }
    fails = _rows(
        con,
        "SELECT ts, target_port AS target, kind, closed_after FROM _alb_kinds "
        "WHERE kind IS NOT NULL ORDER BY ts",
    )
    lines = _rows(
        con,
        "SELECT target_port AS target, list(ts ORDER BY ts) AS ts, "
        "count(*) FILTER (WHERE elb_status_code < 500) AS ok FROM _alb_kinds "
        "WHERE target_port IS NOT NULL GROUP BY 1 ORDER BY 1",
    )
    every = np.sort(np.concatenate([np.asarray(r["ts"], dtype=float) for r in lines] or [[]]))
    for r in lines:
        ts = np.asarray(r["ts"], dtype=float)
        every_kind = [x for x in fails if x["target"] == r["target"]]
        # its timing is the ALB's own failures': the app's odd 500 is not the incident
        mine = [x for x in every_kind if x["kind"] != "target_5xx"]
        others = np.setdiff1d(every, ts) if len(lines) > 1 else np.array([])
        gaps, gone, appeared = _gaps(ts, others, t0, t1)
        secs = sorted({int(x["ts"]) for x in mine})
        counts: dict[str, int] = {}
        for x in every_kind:
            counts[x["kind"]] = counts.get(x["kind"], 0) + 1
        last_fail = mine[-1]["ts"] if mine else None
        closes = [
            x["closed_after"]
            for x in mine
            if x["kind"] in ("closed_at_once", "closed_mid_request", "timeout_kill")
        ]
        per_second = np.bincount(np.array([int(x["ts"]) - secs[0] for x in mine], dtype=int))
        pat.targets.append(
            TargetLife(
                target=str(r["target"]),
                requests=int(ts.size),
                ok=int(r["ok"]),
                first_ts=float(ts[0]),
                last_ts=float(ts[-1]),
                fails=counts,
                fail_first_ts=float(mine[0]["ts"]) if mine else None,
                fail_last_ts=float(last_fail) if last_fail is not None else None,
                fail_seconds=len(secs),
                fail_max_per_s=int(per_second.max()) if mine else 0,
                burst_s=_burst(secs),
                during_fail=int(
                    ((ts >= mine[0]["ts"]) & (ts <= mine[-1]["ts"])).sum() if mine else 0
                ),
                ok_after_fail=_ok_after(con, str(r["target"]), last_fail),
                gaps=gaps,
                gone=gone,
                appeared=appeared,
                median_close_s=float(np.median(closes)) if closes else None,
            )
        )
    _no_target(con, pat)
    _closed_at_once(fails, pat)
    _response_timeouts(con, pat)
    _latency(con, pat, fails)
    return pat


def _ok_after(con: duckdb.DuckDBPyConnection, target: str, ts: float | None) -> int:
    if ts is None:
        return 0
    row = con.execute(
        "SELECT count(*) FROM _alb_kinds WHERE target_port = ? AND ts > ? AND elb_status_code < 500",
        [target, float(ts)],
    ).fetchone()
    return int(row[0]) if row else 0


def _no_target(con: duckdb.DuckDBPyConnection, pat: AlbPatterns) -> None:
    row = _rows(
        con,
        """SELECT min(ts) AS a, max(ts) AS b, count(DISTINCT floor(ts)) AS s FROM _alb_kinds
           WHERE kind = 'no_target'""",
    )[0]
    if row["a"] is None:
        return
    pat.no_target_first_ts, pat.no_target_last_ts = float(row["a"]), float(row["b"])
    pat.no_target_seconds = int(row["s"])
    served = con.execute(
        """SELECT count(*) FROM _alb_kinds WHERE elb_status_code < 500 AND target_port IS NOT NULL
           AND floor(ts) IN (SELECT DISTINCT floor(ts) FROM _alb_kinds WHERE kind = 'no_target')"""
    ).fetchone()
    pat.served_during_no_target = int(served[0]) if served else 0


def _closed_at_once(fails: list[dict[str, Any]], pat: AlbPatterns) -> None:
    at_once = [x for x in fails if x["kind"] == "closed_at_once"]
    if not at_once:
        return
    pat.closed_at_once_targets = len({x["target"] for x in at_once})
    pat.closed_at_once_spread = len({int(x["ts"]) for x in at_once}) / len(at_once)
    pat.closed_at_once_first_ts = float(at_once[0]["ts"])
    pat.closed_at_once_last_ts = float(at_once[-1]["ts"])


def _response_timeouts(con: duckdb.DuckDBPyConnection, pat: AlbPatterns) -> None:
    if not pat.kinds.get("response_timeout"):
        return
    url = alb.request_part_sql("request", "url")
    row = _rows(
        con,
        f"""SELECT median(closed_after) AS med, arg_max(u, n) AS top, max(n) AS top_n,
                   sum(n) AS total, min(a) AS a, max(b) AS b
            FROM (SELECT {url} AS u, count(*) AS n, median(closed_after) AS closed_after,
                         min(ts) AS a, max(ts) AS b
                  FROM _alb_kinds WHERE kind = 'response_timeout' GROUP BY 1)""",
    )[0]
    pat.response_timeout_first_ts, pat.response_timeout_last_ts = float(row["a"]), float(row["b"])
    pat.response_timeout_median_s = float(row["med"]) if row["med"] is not None else None
    pat.response_timeout_top_url = row["top"]
    pat.response_timeout_top_url_share = float(row["top_n"]) / float(row["total"])


def _latency(con: duckdb.DuckDBPyConnection, pat: AlbPatterns, fails: list[dict[str, Any]]) -> None:
    """Does the target time of the answered requests climb before the failures? p50 of the
    first fifth of the window vs the fifth before the first failure."""
    own = [x for x in fails if x["kind"] != "target_5xx"]  # the ALB's own 5xx: the incident
    if not own:
        return
    first_fail = float(own[0]["ts"])
    pat.fail_first_ts, pat.fail_last_ts = first_fail, float(own[-1]["ts"])
    span = first_fail - pat.first_ts
    if span < 10:
        return
    cut = span / 5
    row = _rows(
        con,
        f"""SELECT
              median(target_processing_time) FILTER (WHERE ts < {pat.first_ts + cut!r}) AS early,
              median(target_processing_time) FILTER (WHERE ts >= {first_fail - cut!r}) AS late,
              quantile_cont(target_processing_time, 0.9)
                  FILTER (WHERE ts >= {first_fail - cut!r}) AS late_p90
            FROM _alb_kinds WHERE ts < {first_fail!r} AND target_processing_time >= 0
              AND elb_status_code < 500""",
    )[0]
    if row["early"] and row["late"] is not None:
        pat.latency_climb = float(row["late"]) / max(0.001, float(row["early"]))
        pat.latency_p90_before_fail_s = float(row["late_p90"])


def heat(con: duckdb.DuckDBPyConnection) -> tuple[int, list[str], np.ndarray] | None:
    """5xx per target per second: (first second, targets with '-' last, matrix targets x
    seconds), for the report's heat strip; None without an ALB 5xx."""
    rows = _rows(
        con,
        """SELECT CAST(floor(ts) AS BIGINT) AS t, coalesce(target_port, '-') AS target,
                  count(*) FILTER (WHERE elb_status_code >= 500) AS n
           FROM alb WHERE ts IS NOT NULL GROUP BY 1, 2""",
    )
    if not rows or not any(r["n"] for r in rows):
        return None
    t0 = min(r["t"] for r in rows)
    t1 = min(max(r["t"] for r in rows), t0 + 7 * 86400)
    names = sorted({r["target"] for r in rows}, key=lambda t: (t == "-", t))
    m = np.zeros((len(names), int(t1 - t0 + 1)))
    idx = {t: i for i, t in enumerate(names)}
    for r in rows:
        if r["t"] <= t1:
            m[idx[r["target"]], r["t"] - t0] = r["n"]
    return int(t0), names, m
