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
from analysis.targets import table_columns

# A target "gone" / "appeared": no line of it in its last/first this many seconds while others
# served (and its own rate would have given >= GAP_EXPECTED lines in that time).
MIN_GAP_S = 5.0
# _gap_candidates reads gaps from per-second first/last arrivals: exact only for gaps over 1 s
assert MIN_GAP_S >= 1.0, "gaps shorter than a second need the per-arrival query back"
GAP_EXPECTED = 10.0
# A burst: the failing seconds of a target, no more than this apart.
BURST_JOIN_S = 5
MAX_SPAN_S = 7 * 86400  # a stray timestamp must not allocate years of seconds

KINDS = (
    "closed_at_once",  # keep-alive signature: closed within RACE_MAX_S of dispatch
    "closed_mid_request",  # closed after processing, before gunicorn's timeout
    "timeout_kill",  # closed at gunicorn's --timeout
    "connect_fail",  # 502 -1/-1/-1
    "connect_timeout",  # 504, never dispatched
    "response_timeout",  # 504 after dispatch: the idle timeout
    "no_target",  # 503, target '-'
    "fixed_response",  # a 5xx a listener rule answered itself (actions_executed fixed-response)
    "target_5xx",  # the target's own 5xx
)


def _kind_sql(timeout_s: float, fixed_response: bool = True) -> str:
    closed = alb.target_closed_kind_sql(timeout_s)
    # a listener rule's own 5xx first: no target was asked, whatever its times say
    fixed = (
        f"WHEN elb_status_code >= 500 AND target_status_code IS NULL AND {alb.FIXED_RESPONSE_SQL} "
        "THEN 'fixed_response'"
        if fixed_response
        else ""
    )
    return f"""CASE {fixed}
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
    first_ts: float  # the first and last request routed to it (request_creation_time)
    last_ts: float
    fails: dict[str, int]  # kind -> count
    fail_first_ts: float | None  # its first ALB-generated 5xx
    fail_last_ts: float | None
    fail_seconds: int  # seconds with at least one of its ALB-generated 5xx
    fail_max_per_s: int
    burst_s: float  # the longest run of its failing seconds (gaps <= BURST_JOIN_S joined)
    during_fail: int  # its lines from its first to its last ALB-generated 5xx
    # requests routed to it after its last failure that it answered below 500 itself (a
    # client that gave up, 460, or an ALB 4xx with no target is no sign of the target)
    ok_after_fail: int
    gaps: list[tuple[float, float]]  # (left, back): it was away while the others served
    gone: bool  # disappeared before the window's end while the others served
    appeared: bool  # appeared after the window's start while the others served
    median_close_s: float | None  # seconds from dispatch to the close, target-closed 502s
    # its refused connects (502 -1/-1/-1) alone: a stray failure of another kind hours away
    # does not stretch the stretch the app was down
    refused_first_ts: float | None = None
    refused_last_ts: float | None = None
    during_refused: int = 0  # its lines from its first to its last refused connect
    # answered by the target itself (a status of its own, a 500 too) after its last refused
    # connect: a client that gave up (460) or the ALB's own 5xx is no sign it was back
    answered_after_refused: int = 0
    # ... and before its first refused connect: it served on this address, so the port was right
    answered_before_refused: int = 0

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
    timeout_kill_top_url_share: float | None = None  # share of the --timeout kills on one URL
    timeout_kill_top_url: str | None = None
    latency_climb: float | None = None  # p50 target time before the failures / at the start
    latency_p90_before_fail_s: float | None = None
    fail_first_ts: float | None = None  # first ALB-generated 5xx (not the target's own)
    fail_last_ts: float | None = None
    # a listener rule's own 5xx (actions_executed fixed-response): when, which status and URL
    fixed_response_first_ts: float | None = None
    fixed_response_last_ts: float | None = None
    fixed_response_statuses: dict[str, int] = field(default_factory=dict)
    fixed_response_top_url: str | None = None
    fixed_response_top_url_share: float | None = None
    fixed_response_hosts: int = 0  # distinct hosts they were asked for
    fixed_response_share: float | None = None  # of every request from their first to their last

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


def _gap_s(n: int, first: float, last: float) -> float:
    """How long a target must be missing to count as away: its rate would have given it
    GAP_EXPECTED lines in that time (and never less than MIN_GAP_S)."""
    rate = n / max(1.0, last - first)
    return max(MIN_GAP_S, GAP_EXPECTED / rate)


class _Load:
    """Requests routed per target per second (by request_creation_time), as running sums, so
    that "did the other targets serve between a and b" is two lookups, not a scan per gap."""

    def __init__(self, con: duckdb.DuckDBPyConnection, t0: float, t1: float) -> None:
        self.t0 = int(t0)
        width = min(int(t1) - self.t0, MAX_SPAN_S) + 2
        rows = con.execute(
            f"SELECT target_port, CAST(s AS BIGINT) - {self.t0} AS i, n FROM _alb_secs"
        ).fetchall()
        per: dict[str, np.ndarray] = {}
        for target, i, n in rows:
            if 0 <= i < width:
                per.setdefault(str(target), np.zeros(width))[int(i)] += n
        total = sum(per.values(), np.zeros(width))
        # cum[k] = the other targets' requests in seconds [0, k)
        self.cum = {t: np.concatenate(([0.0], np.cumsum(total - a))) for t, a in per.items()}

    def others_served(self, target: str, a: float, b: float) -> bool:
        """The other targets got >= GAP_EXPECTED requests from second a to b: the load went on."""
        cum = self.cum[target]
        i = int(np.clip(np.ceil(a) - self.t0, 0, cum.size - 1))
        j = int(np.clip(np.floor(b) - self.t0, 0, cum.size - 1))
        return j > i and cum[j] - cum[i] >= GAP_EXPECTED


# The ALB's own 5xx (the app's odd 500 is not the incident): a target's failure timing is theirs.
_OWN = "kind IS NOT NULL AND kind <> 'target_5xx'"
CLOSE_KINDS = "('closed_at_once', 'closed_mid_request', 'timeout_kill')"
MAX_GAPS = 100  # candidate gaps checked per target (a window where a target is mostly away)


def compute(con: duckdb.DuckDBPyConnection, timeout_s: float) -> AlbPatterns | None:
    """The figures of the ``alb`` table; None when it has no entry. Aggregates in DuckDB: only
    per-target rows, failing seconds and candidate gaps come back to Python.

    Three passes over the entries (the head, the per-target figures, the per-target seconds):
    the questions about failures read ``_alb_fails``, the few entries with a kind (every kind
    is a 5xx), and the gaps read ``_alb_secs``, one row per target and second of arrival."""
    kind = _kind_sql(timeout_s, "actions_executed" in table_columns(con, "alb"))
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW _alb_kinds AS
            SELECT ts, coalesce(request_creation_time, ts) AS created, target_port,
                   elb_status_code, target_status_code, target_processing_time, request,
                   {alb.closed_after_sql()} AS closed_after, {kind} AS kind FROM alb
            WHERE ts IS NOT NULL"""
    )
    pat = _head(con)
    if pat is None:
        return None
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _alb_fails AS SELECT * FROM _alb_kinds WHERE kind IS NOT NULL"
    )
    # Per target and second of arrival: its requests, and its first and last arrival in it. Two
    # arrivals of a target more than MIN_GAP_S apart are the last of one second and the first of
    # a later one, so the gaps come from these rows alone.
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _alb_secs AS
           SELECT target_port, floor(created) AS s, count(*) AS n, min(created) AS lo,
                  max(created) AS hi
           FROM _alb_kinds WHERE target_port IS NOT NULL GROUP BY 1, 2"""
    )
    try:
        return _compute(con, pat)
    finally:
        con.execute("DROP TABLE IF EXISTS _alb_fails; DROP TABLE IF EXISTS _alb_secs")


def _head(con: duckdb.DuckDBPyConnection) -> AlbPatterns | None:
    """The window's span and entries; None when the log has no entry."""
    head = _rows(con, "SELECT count(*) AS n, min(ts) AS t0, max(ts) AS t1 FROM _alb_kinds")[0]
    if not head["n"]:
        return None
    return AlbPatterns(
        first_ts=float(head["t0"]), last_ts=float(head["t1"]), entries=int(head["n"])
    )


def _compute(con: duckdb.DuckDBPyConnection, pat: AlbPatterns) -> AlbPatterns:
    """Every figure but the head, from ``_alb_kinds``, ``_alb_fails`` and ``_alb_secs``."""
    t0, t1 = pat.first_ts, pat.last_ts
    pat.kinds = {
        r["kind"]: int(r["n"])
        for r in _rows(con, "SELECT kind, count(*) AS n FROM _alb_fails GROUP BY 1")
    }
    per = _rows(
        con,
        f"""WITH f AS (
              SELECT target_port, min(ts) FILTER (WHERE {_OWN}) AS fa,
                     max(ts) FILTER (WHERE {_OWN}) AS fb,
                     median(closed_after) FILTER (WHERE kind IN {CLOSE_KINDS}) AS med,
                     min(ts) FILTER (WHERE kind = 'connect_fail') AS ra,
                     max(ts) FILTER (WHERE kind = 'connect_fail') AS rb
              FROM _alb_fails WHERE target_port IS NOT NULL GROUP BY 1)
            SELECT k.target_port AS target, count(*) AS n, min(created) AS a, max(created) AS b,
                   count(*) FILTER (WHERE elb_status_code < 500) AS ok,
                   any_value(f.fa) AS fa, any_value(f.fb) AS fb,
                   count(*) FILTER (WHERE ts BETWEEN f.fa AND f.fb) AS during,
                   count(*) FILTER (WHERE created > f.fb AND target_status_code < 500) AS ok_after,
                   any_value(f.med) AS med, any_value(f.ra) AS ra, any_value(f.rb) AS rb,
                   count(*) FILTER (WHERE ts BETWEEN f.ra AND f.rb) AS rduring,
                   count(*) FILTER (WHERE created > f.rb AND target_status_code IS NOT NULL) AS rok_after,
                   count(*) FILTER (WHERE ts < f.ra AND target_status_code IS NOT NULL) AS rok_before
            FROM _alb_kinds k LEFT JOIN f USING (target_port)
            WHERE k.target_port IS NOT NULL GROUP BY 1 ORDER BY 1""",
    )
    counts: dict[str, dict[str, int]] = {}
    for r in _rows(
        con,
        "SELECT target_port AS target, kind, count(*) AS n FROM _alb_fails "
        "WHERE target_port IS NOT NULL GROUP BY 1, 2",
    ):
        counts.setdefault(r["target"], {})[r["kind"]] = int(r["n"])
    secs: dict[str, list[tuple[int, int]]] = {}
    for r in _rows(
        con,
        f"""SELECT target_port AS target, CAST(floor(ts) AS BIGINT) AS s, count(*) AS n
            FROM _alb_fails WHERE target_port IS NOT NULL AND {_OWN} GROUP BY 1, 2 ORDER BY 1, 2""",
    ):
        secs.setdefault(r["target"], []).append((int(r["s"]), int(r["n"])))
    gaps = _gap_candidates(con)
    load = _Load(con, t0, t1)
    for r in per:
        name = str(r["target"])
        away = _gap_s(int(r["n"]), float(r["a"]), float(r["b"]))
        mine = secs.get(name, [])
        pat.targets.append(
            TargetLife(
                target=name,
                requests=int(r["n"]),
                ok=int(r["ok"]),
                first_ts=float(r["a"]),
                last_ts=float(r["b"]),
                fails=counts.get(name, {}),
                fail_first_ts=_float(r["fa"]),
                fail_last_ts=_float(r["fb"]),
                fail_seconds=len(mine),
                fail_max_per_s=max((c for _s, c in mine), default=0),
                burst_s=_burst([s for s, _c in mine]),
                during_fail=int(r["during"]),
                ok_after_fail=int(r["ok_after"]),
                gaps=[
                    (a, b)
                    for a, b in gaps.get(name, [])[:MAX_GAPS]
                    if load.others_served(name, a + 1, b - 1)
                ],
                gone=t1 - float(r["b"]) > away and load.others_served(name, float(r["b"]) + 1, t1),
                appeared=float(r["a"]) - t0 > away
                and load.others_served(name, t0, float(r["a"]) - 1),
                median_close_s=_float(r["med"]),
                refused_first_ts=_float(r["ra"]),
                refused_last_ts=_float(r["rb"]),
                during_refused=int(r["rduring"]),
                answered_after_refused=int(r["rok_after"]),
                answered_before_refused=int(r["rok_before"]),
            )
        )
    _no_target(con, pat)
    _fixed_response(con, pat)
    _closed_at_once(con, pat)
    _response_timeouts(con, pat)
    _timeout_kills(con, pat)
    _latency(con, pat)
    return pat


def _float(v: Any) -> float | None:
    return float(v) if v is not None else None


def _gap_candidates(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[float, float]]]:
    """Per target, the stretches without a line of it longer than its own rate explains (at
    least MIN_GAP_S: from the last arrival of one of its seconds to the first of the next)."""
    out: dict[str, list[tuple[float, float]]] = {}
    for r in _rows(
        con,
        f"""WITH t AS (SELECT target_port, CAST(sum(n) AS BIGINT) AS n, min(lo) AS a,
                              max(hi) AS b
                       FROM _alb_secs GROUP BY 1),
                 g AS (SELECT target_port, lo AS created,
                              lo - lag(hi) OVER (PARTITION BY target_port ORDER BY s) AS d
                       FROM _alb_secs)
            SELECT g.target_port AS target, g.created - g.d AS left_ts, g.created AS back_ts
            FROM g JOIN t USING (target_port)
            WHERE g.d > greatest({MIN_GAP_S!r}, {GAP_EXPECTED!r} * greatest(1, t.b - t.a) / t.n)
            ORDER BY 1, 2""",
    ):
        out.setdefault(str(r["target"]), []).append((float(r["left_ts"]), float(r["back_ts"])))
    return out


def _no_target(con: duckdb.DuckDBPyConnection, pat: AlbPatterns) -> None:
    row = _rows(
        con,
        """SELECT min(ts) AS a, max(ts) AS b, count(DISTINCT floor(ts)) AS s FROM _alb_fails
           WHERE kind = 'no_target'""",
    )[0]
    if row["a"] is None:
        return
    pat.no_target_first_ts, pat.no_target_last_ts = float(row["a"]), float(row["b"])
    pat.no_target_seconds = int(row["s"])
    served = con.execute(
        """SELECT count(*) FROM _alb_kinds WHERE elb_status_code < 500 AND target_port IS NOT NULL
           AND floor(ts) IN (SELECT DISTINCT floor(ts) FROM _alb_fails WHERE kind = 'no_target')"""
    ).fetchone()
    pat.served_during_no_target = int(served[0]) if served else 0


def _fixed_response(con: duckdb.DuckDBPyConnection, pat: AlbPatterns) -> None:
    if not pat.kinds.get("fixed_response"):
        return
    url = alb.request_part_sql("request", "url")
    host = f"split_part(split_part({url}, '://', 2), '/', 1)"
    row = _rows(
        con,
        f"""SELECT min(ts) AS a, max(ts) AS b, count(DISTINCT {host}) AS hosts, count(*) AS n
            FROM _alb_fails WHERE kind = 'fixed_response'""",
    )[0]
    a, b = float(row["a"]), float(row["b"])
    pat.fixed_response_first_ts, pat.fixed_response_last_ts = a, b
    pat.fixed_response_hosts = int(row["hosts"])
    during = con.execute(
        f"SELECT count(*) FROM _alb_kinds WHERE ts BETWEEN {a!r} AND {b!r}"
    ).fetchone()
    pat.fixed_response_share = int(row["n"]) / max(1, int(during[0]) if during else 1)
    pat.fixed_response_statuses = {
        str(r["s"]): int(r["n"])
        for r in _rows(
            con,
            "SELECT elb_status_code AS s, count(*) AS n FROM _alb_fails "
            "WHERE kind = 'fixed_response' GROUP BY 1 ORDER BY 2 DESC",
        )
    }
    top = _top_url(con, "fixed_response")
    pat.fixed_response_top_url = top["top"]
    pat.fixed_response_top_url_share = int(top["top_n"]) / max(1, int(top["total"]))


def _closed_at_once(con: duckdb.DuckDBPyConnection, pat: AlbPatterns) -> None:
    row = _rows(
        con,
        """SELECT count(*) AS n, count(DISTINCT floor(ts)) AS s, count(DISTINCT target_port) AS t,
                  min(ts) AS a, max(ts) AS b FROM _alb_fails WHERE kind = 'closed_at_once'""",
    )[0]
    if not row["n"]:
        return
    pat.closed_at_once_targets = int(row["t"])
    pat.closed_at_once_spread = int(row["s"]) / int(row["n"])
    pat.closed_at_once_first_ts, pat.closed_at_once_last_ts = float(row["a"]), float(row["b"])


def _top_url(con: duckdb.DuckDBPyConnection, kind: str) -> dict[str, Any]:
    """The failures of one kind: their commonest URL (top, top_n of total), first and last time
    (a, b) and median time from dispatch to the failure (med)."""
    url = alb.request_part_sql("request", "url")
    return _rows(
        con,
        f"""SELECT arg_max(u, n) AS top, max(n) AS top_n, sum(n) AS total, min(a) AS a,
                   max(b) AS b,
                   (SELECT median(closed_after) FROM _alb_fails WHERE kind = '{kind}') AS med
            FROM (SELECT {url} AS u, count(*) AS n, min(ts) AS a, max(ts) AS b
                  FROM _alb_fails WHERE kind = '{kind}' GROUP BY 1)""",
    )[0]


def _response_timeouts(con: duckdb.DuckDBPyConnection, pat: AlbPatterns) -> None:
    if not pat.kinds.get("response_timeout"):
        return
    row = _top_url(con, "response_timeout")
    pat.response_timeout_first_ts, pat.response_timeout_last_ts = float(row["a"]), float(row["b"])
    pat.response_timeout_median_s = float(row["med"]) if row["med"] is not None else None
    pat.response_timeout_top_url = row["top"]
    pat.response_timeout_top_url_share = float(row["top_n"]) / float(row["total"])


def _timeout_kills(con: duckdb.DuckDBPyConnection, pat: AlbPatterns) -> None:
    """Workers killed at gunicorn's --timeout gather on the endpoint that runs longer than it."""
    if not pat.kinds.get("timeout_kill"):
        return
    row = _top_url(con, "timeout_kill")
    pat.timeout_kill_top_url = row["top"]
    pat.timeout_kill_top_url_share = float(row["top_n"]) / float(row["total"])


def _latency(con: duckdb.DuckDBPyConnection, pat: AlbPatterns) -> None:
    """Does the target time of the answered requests climb before the failures? p50 of the
    first fifth of the window vs the fifth before the first ALB-generated 5xx."""
    row = _rows(con, f"SELECT min(ts) AS a, max(ts) AS b FROM _alb_fails WHERE {_OWN}")[0]
    if row["a"] is None:
        return
    first_fail = float(row["a"])
    pat.fail_first_ts, pat.fail_last_ts = first_fail, float(row["b"])
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
