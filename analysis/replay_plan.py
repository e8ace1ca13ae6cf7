"""The replay plan: an ALB access-log window turned, line for line, into the requests to send.

Everything happens in DuckDB over an on-disk database with a memory cap, and the plan is written
straight to Parquet (core/replay.py has its columns): a window of millions of lines is never held
in Python's memory. Each line of the window becomes one plan row with its offset from the window
start (the ALB's request_creation_time: when the request arrived, not when it was answered), its
method, path and query (secret-looking values replaced), its user agent's engine and its
connection (client:port = one lane, kept in order by the sender). Rows that are not sent say why:
writes without a body, requests the ALB never forwarded, the path filter, the limit.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from analysis.parsers import alb as alb_parser
from analysis.parsers.common import ParseStats, sql_list, sql_str
from core.errors import AlbprobeError
from core.replay import ACTIONS, PLAN_COLUMNS, REDACTED, SECRET_PARAMS, WRITE_METHODS

PLAN_FILE = "plan.parquet"
SUMMARY_FILE = "plan.json"
CLONE_JITTER_S = 0.5  # a --scale clone's lane arrives up to this much before or after its original
# Statuses the ALB returns itself for a request it rejects before choosing a target: these lines
# were never forwarded (with no target port logged).
REJECTED_STATUSES = (400, 405, 408, 413, 414, 417, 431, 463, 464)
# The fields the analysis reads, the load balancer (one ALB's window), the client (its lanes) and
# the user agent (its engine judges the responses).
_FIELDS = (*alb_parser.ANALYSIS_FIELDS, "elb", "client_port", "user_agent")
LISTED_MAX = 50  # never-forwarded lines listed in plan.json


@dataclass(frozen=True)
class PlanOptions:
    speed: float = 1.0  # x2 = the window in half the time
    scale: float = 1.0  # x2 = twice the requests per second (clones of lanes, jittered)
    limit: int | None = None  # send at most this many lines (the first ones)
    paths: str | None = None  # regular expression a path must match (search) to be sent
    allow_writes: bool = False
    bodies: Mapping[str, str] = field(default_factory=dict)  # path -> body template
    secret_params: Sequence[str] = ()  # more secret-looking query names (the config's)
    seed: int = 1
    gunicorn_timeout: float | None = None  # the original's --timeout (None: gunicorn's 30 s)


# A line whose worker was killed at gunicorn's --timeout logs the time to the kill, not how long
# the request would have run: its replay asks the testbed for this much past the timeout, so that
# gunicorn kills it again (at exactly the timeout, the answer races the kill).
KILL_PAST_S = 5.0


@dataclass
class PlanSummary:
    """What the plan holds: the figures the dry run prints and plan.json keeps."""

    window_start: float
    window_end: float
    span_s: float  # last offset (seconds of the window)
    speed: float
    scale: float
    lines: int  # log lines in the window (well formed)
    malformed: int  # lines the parser could not read: never forwarded, counted
    actions: dict[str, int]  # plan rows per action (clones included)
    sent: int
    peak_rps: float  # highest per-second count of sent requests, in replay seconds
    peak_second: float  # its replay second
    lanes: int
    peak_lanes: int  # most lanes open at once (replay users needed)
    engines: dict[str, int]
    redacted: dict[str, int]  # query name -> lines whose value was replaced
    replacement: str
    writes_skipped: list[dict[str, Any]]
    not_forwarded: list[dict[str, Any]]
    malformed_examples: list[str]
    elbs: list[str]
    original: dict[str, int]  # the window's status picture: 5xx, 502, alb_5xx, target_5xx
    targets: int = 0  # distinct targets the window's lines were routed to
    # most requests at the targets at once when the plan is sent (its target times, offsets
    # divided by the speed): what the testbed must serve without queueing
    peak_busy: int = 0

    @property
    def duration_s(self) -> float:
        return self.span_s / self.speed

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["duration_s"] = self.duration_s
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PlanSummary:
        return cls(**{k: v for k, v in d.items() if k != "duration_s"})


def secret_regex(names: Sequence[str]) -> str:
    """An RE2 pattern for one query parameter whose name contains one of ``names`` (any case):
    group 1 = '?' or '&', group 2 = the name, group 3 = the value."""
    words = "|".join(re.escape(n.lower()) for n in dict.fromkeys((*SECRET_PARAMS, *names)) if n)
    return rf"(?i)([?&])([^=&#]*(?:{words})[^=&#]*)=([^&#]*)"


def _engine_sql(ua: str) -> str:
    """The browser engine of a user agent: Firefox, WebKit (Safari, and every iOS browser that is
    not Firefox-branded: same engine), Chromium (Chrome, Edge, Opera...), else other."""
    return (
        f"CASE WHEN {ua} IS NULL OR {ua} = '-' THEN 'other' "
        f"WHEN contains({ua}, 'Firefox/') OR contains({ua}, 'FxiOS/') THEN 'firefox' "
        f"WHEN contains({ua}, 'CriOS/') OR contains({ua}, 'EdgiOS/') THEN 'webkit' "
        f"WHEN contains({ua}, 'Chrome/') OR contains({ua}, 'Chromium/') THEN 'chromium' "
        f"WHEN contains({ua}, 'AppleWebKit/') AND contains({ua}, 'Safari/') THEN 'webkit' "
        "ELSE 'other' END"
    )


def _connect(tmp: Path) -> duckdb.DuckDBPyConnection:
    """An on-disk database with a memory cap: window functions over millions of lines spill."""
    con = duckdb.connect(str(tmp / "replay.duckdb"))
    con.execute("SET memory_limit='256MB'")
    con.execute(f"SET temp_directory={sql_str(str(tmp / 'spill'))}")
    con.execute("SET preserve_insertion_order=true")
    con.execute("SET threads=2")
    return con


def check_options(opts: PlanOptions) -> None:
    """Bad --speed/--scale/--limit/--paths: one line each."""
    if not opts.speed > 0:
        raise AlbprobeError(
            f"--speed {opts.speed:g}: must be > 0", hint="1 = as logged, 2 = twice as fast"
        )
    if not opts.scale > 0:
        raise AlbprobeError(
            f"--scale {opts.scale:g}: must be > 0", hint="1 = as logged, 2 = twice the requests"
        )
    if opts.limit is not None and opts.limit < 1:
        raise AlbprobeError(f"--limit {opts.limit}: must be >= 1")
    if opts.paths is not None:
        try:
            duckdb.sql(f"SELECT regexp_matches('/', {sql_str(opts.paths)})").fetchall()
        except duckdb.Error as exc:
            raise AlbprobeError(
                f"--paths {opts.paths!r}: not a regular expression ({str(exc).splitlines()[0]})"
            ) from None


def _check_balancer(con: duckdb.DuckDBPyConnection, source: str, expected: str | None) -> list[str]:
    """The window must be one Application Load Balancer's (and the configured one's, if named)."""
    elbs = [str(r[0]) for r in con.execute("SELECT DISTINCT elb FROM alb ORDER BY 1").fetchall()]
    other = [e for e in elbs if not e.startswith("app/")]
    if other:
        raise AlbprobeError(
            f"--alb-logs {source}: these are not an Application Load Balancer's logs (load "
            f"balancer {other[0]!r})",
            hint="replay reads ALB access logs (their elb field starts with app/)",
        )
    if len(elbs) > 1:
        raise AlbprobeError(
            f"--alb-logs {source}: the window mixes {len(elbs)} load balancers "
            f"({', '.join(elbs[:3])})",
            hint="pass the folder or s3:// prefix of one load balancer's logs",
        )
    if expected and elbs and expected not in elbs[0]:
        raise AlbprobeError(
            f"--alb-logs {source}: these are the logs of load balancer {elbs[0]!r}, not of "
            f"[aws] load_balancer {expected!r}",
            hint="pass that load balancer's logs, or fix [aws] load_balancer",
        )
    return elbs


def _lines_sql(since: float | None, gunicorn_timeout: float | None = None) -> str:
    """One row per log line: arrival, path, engine, client; numbered in arrival order."""
    method = alb_parser.request_part_sql("request", "method")
    url = alb_parser.decode_sql(alb_parser.request_part_sql("request", "url"))
    arrival = (
        "coalesce(request_creation_time, ts - greatest(request_processing_time, 0) "
        "- greatest(target_processing_time, 0) - greatest(response_processing_time, 0))"
    )
    start = f"{float(since)!r}" if since is not None else "min(arrival) OVER ()"
    return f"""
        SELECT row_number() OVER (ORDER BY arrival, ts, client_port) AS line,
               coalesce(greatest(0.0, arrival - {start}), 0.0) AS offset0, *
        FROM (
          SELECT {arrival} AS arrival, ts, client_port,
                 split_part(client_port, ':', 1) AS client_ip,
                 upper({method}) AS method,
                 CASE WHEN u IS NULL OR u = '-' THEN NULL
                      WHEN regexp_replace(u, '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*', '') = '' THEN '/'
                      ELSE regexp_replace(u, '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*', '') END AS raw_path,
                 {_engine_sql("user_agent")} AS engine,
                 target_port, elb_status_code, target_status_code,
                 target_processing_time, closed_kind,
                 greatest(request_processing_time, 0) + greatest(target_processing_time, 0)
                   + greatest(response_processing_time, 0) AS latency_s
          FROM (SELECT *, {url} AS u, {alb_parser.target_closed_kind_sql(gunicorn_timeout)}
                  AS closed_kind FROM alb)
        )"""


def build_plan(
    files: Sequence[Path],
    source: str,
    out_dir: Path,
    *,
    since: float | None = None,
    until: float | None = None,
    opts: PlanOptions = PlanOptions(),
    load_balancer: str | None = None,
) -> PlanSummary:
    """Write ``out_dir``/plan.parquet and plan.json from the ALB log window; return the summary."""
    check_options(opts)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="albprobe-replay-") as tmp:
        con = _connect(Path(tmp))
        try:
            stats = alb_parser.load(con, files, since=since, until=until, fields=_FIELDS)
            n = con.execute("SELECT count(*) FROM alb").fetchone()
            if not n or not n[0]:
                raise _empty(source, stats, windowed=since is not None or until is not None)
            elbs = _check_balancer(con, source, load_balancer)
            _plan_table(con, since, opts)
            con.execute(
                f"COPY (SELECT {', '.join(PLAN_COLUMNS)} FROM plan ORDER BY offset_s, line, clone) "
                f"TO {sql_str(str(out_dir / PLAN_FILE))} (FORMAT parquet, ROW_GROUP_SIZE 50000)"
            )
            summary = _summarise(con, stats, opts, elbs, since, until)
        finally:
            con.close()
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary.to_dict(), indent=2), encoding="utf-8")
    return summary


def _empty(source: str, st: ParseStats, *, windowed: bool) -> AlbprobeError:
    from analysis.pipeline import _no_entries  # the same words as analyze --alb-logs

    return _no_entries(source, st, windowed=windowed)


def _plan_table(con: duckdb.DuckDBPyConnection, since: float | None, opts: PlanOptions) -> None:
    con.execute(f"CREATE TABLE lines AS {_lines_sql(since, opts.gunicorn_timeout)}")
    kill_ms = (
        float(opts.gunicorn_timeout or alb_parser.GUNICORN_DEFAULT_TIMEOUT_S) + KILL_PAST_S
    ) * 1000
    copies = max(1, int(-(-opts.scale // 1)))  # ceil
    whole, frac = int(opts.scale // 1), opts.scale % 1
    seed = int(opts.seed)
    bodies = sql_list(list(opts.bodies)) if opts.bodies else "[]"
    path_only = "split_part(raw_path, '?', 1)"
    writes = sql_list(list(WRITE_METHODS))
    rejected = ", ".join(str(s) for s in REJECTED_STATUSES)
    path_filter = (
        f"WHEN NOT regexp_matches({path_only}, {sql_str(opts.paths)}) THEN 'filtered'"
        if opts.paths
        else ""
    )
    write_ok = (
        f"{'true' if opts.allow_writes else 'false'} AND list_contains({bodies}, {path_only})"
    )
    secret = sql_str(secret_regex(opts.secret_params))
    # uniform [0, 1) from a hash: deterministic for a seed, independent per (lane, clone)
    u = "((hash(base_lane, k, {s}) % 1000003) / 1000003.0)"
    con.execute(f"""
        CREATE VIEW classified AS
        SELECT l.*, dense_rank() OVER (ORDER BY client_port) AS base_lane,
          CASE WHEN method IS NULL OR raw_path IS NULL OR method = '-' THEN 'not-forwarded'
               WHEN target_port IS NULL AND target_status_code IS NULL
                    AND elb_status_code IN ({rejected}) THEN 'not-forwarded'
               {path_filter}
               WHEN list_contains({writes}, method) AND NOT ({write_ok}) THEN 'skip-write'
               ELSE 'send' END AS action0,
          CASE WHEN method = 'OPTIONS' THEN coalesce(first_value(
                 CASE WHEN method <> 'OPTIONS' THEN method END IGNORE NULLS) OVER (
                 PARTITION BY client_ip, raw_path ORDER BY offset0, line
                 ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING), 'GET') END AS preflight_for
        FROM lines l""")
    con.execute(f"""
        CREATE VIEW cloned AS
        SELECT c.*, k AS clone, base_lane * {copies} + k AS lane,
          CASE WHEN k = 0 THEN offset0
               ELSE greatest(0.0, offset0 + ({u.format(s=seed)} - 0.5) * 2 * {CLONE_JITTER_S!r})
          END AS offset_s
        FROM classified c, range({copies}) t(k)
        WHERE k < {whole} OR (k = {whole} AND {u.format(s=seed + 1)} < {frac!r})""")
    limit = (
        f"WHEN action0 = 'send' AND row_number() OVER (PARTITION BY action0 = 'send' "
        f"ORDER BY offset_s, line, clone) > {int(opts.limit)} THEN 'beyond-limit'"
        if opts.limit
        else ""
    )
    con.execute(f"""
        CREATE VIEW acted AS
        SELECT *, CASE {limit} WHEN true THEN action0 END AS action FROM cloned""")
    con.execute(f"""
        CREATE TABLE plan AS
        SELECT line, clone, offset_s, action,
          CASE WHEN method = 'OPTIONS' THEN 'preflight' ELSE 'actual' END AS kind,
          method,
          CASE WHEN raw_path IS NULL THEN NULL
               ELSE regexp_replace(raw_path, {secret}, '\\1\\2={REDACTED}', 'g') END AS path,
          preflight_for, engine, lane,
          CASE WHEN action = 'send' THEN lead(line) OVER (
                 PARTITION BY lane, action = 'send' ORDER BY offset_s, line) IS NULL
               ELSE false END AS last_in_lane,
          CASE WHEN closed_kind = 'timeout-kill' THEN {kill_ms!r}
               WHEN target_processing_time >= 0 THEN target_processing_time * 1000 END
            AS target_ms,
          elb_status_code AS elb_status, target_status_code AS target_status,
          latency_s * 1000 AS latency_ms,
          nullif(array_to_string(list_distinct(
            regexp_extract_all(raw_path, {secret}, 2)), ','), '') AS redacted
        FROM acted""")
    assert set(ACTIONS) >= {
        str(r[0]) for r in con.execute("SELECT DISTINCT action FROM plan").fetchall()
    }


def _summarise(
    con: duckdb.DuckDBPyConnection,
    stats: ParseStats,
    opts: PlanOptions,
    elbs: list[str],
    since: float | None,
    until: float | None,
) -> PlanSummary:
    def one(sql: str) -> tuple:
        row = con.execute(sql).fetchone()
        assert row is not None
        return row

    def rows(sql: str) -> list[dict[str, Any]]:
        cur = con.execute(sql)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    speed = float(opts.speed)
    start, end = one("SELECT min(arrival), max(ts) FROM lines")
    start = since if since is not None else start
    end = until if until is not None else end
    actions = {
        str(a): int(c)
        for a, c in con.execute("SELECT action, count(*) FROM plan GROUP BY 1").fetchall()
    }
    span = float(one("SELECT coalesce(max(offset_s), 0) FROM plan")[0])
    peak = (
        one(
            f"SELECT count(*) AS n, floor(offset_s / {speed!r}) AS s FROM plan WHERE action = 'send' "
            "GROUP BY 2 ORDER BY 1 DESC, 2 LIMIT 1"
        )
        if actions.get("send")
        else (0, 0.0)
    )
    # lanes open at once: a lane is busy from its first arrival to its last one's end
    peak_lanes = one(f"""
        SELECT coalesce(max(open), 0) FROM (
          SELECT sum(d) OVER (ORDER BY t, d ROWS UNBOUNDED PRECEDING) AS open FROM (
            SELECT min(offset_s) / {speed!r} AS t, 1 AS d FROM plan WHERE action = 'send' GROUP BY lane
            UNION ALL
            SELECT max(offset_s + coalesce(latency_ms, 0) / 1000) / {speed!r}, -1
            FROM plan WHERE action = 'send' GROUP BY lane))""")[0]
    # requests at the targets at once: each sent line holds one from its send to its target time
    peak_busy = one(f"""
        SELECT coalesce(max(busy), 0) FROM (
          SELECT sum(d) OVER (ORDER BY t, d ROWS UNBOUNDED PRECEDING) AS busy FROM (
            SELECT offset_s / {speed!r} AS t, 1 AS d FROM plan
            WHERE action = 'send' AND target_ms IS NOT NULL
            UNION ALL
            SELECT offset_s / {speed!r} + target_ms / 1000, -1 FROM plan
            WHERE action = 'send' AND target_ms IS NOT NULL))""")[0]
    orig = rows("""
        SELECT count(*) FILTER (WHERE elb_status >= 500) AS "5xx",
               count(*) FILTER (WHERE elb_status = 502) AS "502",
               count(*) FILTER (WHERE elb_status >= 500 AND target_status IS NULL) AS alb_5xx,
               count(*) FILTER (WHERE target_status >= 500) AS target_5xx
        FROM plan WHERE clone = 0""")[0]
    return PlanSummary(
        window_start=float(start),
        window_end=float(end),
        span_s=span,
        speed=speed,
        scale=float(opts.scale),
        lines=int(one("SELECT count(*) FROM lines")[0]),
        malformed=stats.malformed,
        actions=actions,
        sent=actions.get("send", 0),
        peak_rps=float(peak[0]),
        peak_second=float(peak[1]),
        lanes=int(one("SELECT count(DISTINCT lane) FROM plan WHERE action = 'send'")[0]),
        peak_lanes=int(peak_lanes or 0),
        engines={
            str(e): int(c)
            for e, c in con.execute(
                "SELECT engine, count(*) FROM plan WHERE action = 'send' GROUP BY 1 ORDER BY 2 DESC"
            ).fetchall()
        },
        redacted={
            str(nm): int(c)
            for nm, c in con.execute(
                "SELECT nm, count(*) FROM (SELECT unnest(string_split(redacted, ',')) AS nm "
                "FROM plan WHERE redacted IS NOT NULL AND clone = 0) GROUP BY 1 ORDER BY 2 DESC"
            ).fetchall()
        },
        replacement=REDACTED,
        writes_skipped=rows(
            "SELECT method, split_part(path, '?', 1) AS path, count(*) AS lines FROM plan "
            "WHERE action = 'skip-write' GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 20"
        ),
        not_forwarded=rows(
            "SELECT line, coalesce(method, '-') AS method, coalesce(path, '-') AS path, "
            f"elb_status FROM plan WHERE action = 'not-forwarded' AND clone = 0 "
            f"ORDER BY line LIMIT {LISTED_MAX}"
        ),
        malformed_examples=list(stats.examples),
        elbs=elbs,
        original={k: int(v) for k, v in orig.items()},
        targets=int(one("SELECT count(DISTINCT target_port) FROM lines")[0]),
        peak_busy=int(peak_busy or 0),
    )


def read_summary(folder: Path) -> PlanSummary:
    return PlanSummary.from_dict(json.loads((folder / SUMMARY_FILE).read_text(encoding="utf-8")))
