"""Failures from the release and from gunicorn's workers, and the wrong-scheme redirect: the
signals of the `deploy`, `worker-kill`, `worker-recycle` and `http-redirect` causes.

* deploy: proxy failures inside a target's deregistration, stop or registration window (the
  testbed's target events, CONTRACT10), named by pattern: stopped before deregistered; a drain
  (deregistration_delay) or gunicorn graceful timeout shorter than the in-flight work; registered
  before ready; a 503 with no routable target.
* worker-kill: gunicorn's "Worker (pid:N) was sent SIGKILL! Perhaps out of memory?" with no
  WORKER TIMEOUT of that worker before it (the OOM killer's pattern), and proxy 502s at that time.
* worker-recycle: --max-requests recycling ("Autorestarting worker after current request."),
  counted as a cause only when failures fall next to a recycle.
* http-redirect: preflights answered with a redirect by the proxy (the ALB's port-80 listener),
  which Chromium refuses: "Redirect is not allowed for a preflight request".

Pure over the dataset's DuckDB tables (analysis/dataset.py); the proxy log's server names map to
targets through analysis/targets.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb

from analysis.targets import table_columns, target_of_server

# A failure this close to a worker event (s) is taken as caused by it (log timestamps are 1 s).
NEAR_S = 2.0
# How long after a target turns healthy its failures still count as "registered before ready".
AFTER_HEALTHY_S = 5.0
# A failure within this of a drain's end (s) was cut when the ALB closed the connections.
DRAIN_EDGE_S = 1.5
_DELAY = re.compile(r"delay=([\d.]+)")
_GRACEFUL = re.compile(r"graceful=([\d.]+)")
REDIRECT_STEP = "preflight-redirect"  # probes/cors/messages.PREFLIGHT_REDIRECT


@dataclass(frozen=True)
class Failure:
    ts: float
    target: str | None  # None: the log does not say (requests table, <NOSRV>)
    status: int
    no_target: bool = False  # the proxy found no routable target (<NOSRV> / ALB "-")


@dataclass
class ReleaseFigures:
    # proxy failures considered (proxy log 5xx, else ALB log, else requests); read only when the
    # run had a deploy or a worker kill / recycle to attribute them to (failure_source "" else)
    failures: int = 0
    failure_source: str = ""  # "proxy log" | "ALB log" | "requests" | ""
    deploys: int = 0  # deploy_started events
    in_windows: int = 0  # failures inside a deregistration / stop / registration window
    stopped_before_deregistered: dict[str, int] = field(default_factory=dict)  # target: failures
    short_drain: dict[str, int] = field(default_factory=dict)  # target: failures at the drain end
    drain_delays: dict[str, float] = field(default_factory=dict)  # target: deregistration_delay
    short_graceful: dict[str, int] = field(default_factory=dict)  # target: failures in its stop
    graceful: dict[str, float] = field(default_factory=dict)  # target: graceful timeout
    early_register: dict[str, int] = field(default_factory=dict)  # target: failures before ready
    no_routable_503: int = 0  # 503s with no routable target
    oom_kills: int = 0  # SIGKILL without a WORKER TIMEOUT of that worker before it
    oom_pids: list[int] = field(default_factory=list)
    near_kill: int = 0  # failures within NEAR_S of such a kill
    recycles: int = 0  # "Autorestarting worker after current request."
    near_recycle: int = 0
    redirect_preflights: int = 0  # preflights answered 3xx by the proxy
    redirect_actuals: int = 0  # actual requests answered 3xx by the proxy (no CORS headers)
    redirect_log_lines: int = 0  # the proxy log's local redirects (301/302/307/308, LR--)

    @property
    def deploy_failures(self) -> int:
        return (
            sum(self.stopped_before_deregistered.values())
            + sum(self.short_drain.values())
            + sum(self.short_graceful.values())
            + sum(self.early_register.values())
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _failures(con: duckdb.DuckDBPyConnection, targets: list[str]) -> tuple[str, list[Failure]]:
    if {"server", "status", "ts"} <= table_columns(con, "haproxy"):
        # HAProxy stamps a line with the request's arrival: a failure happens at its end
        rows = con.execute(
            """SELECT ts + greatest(coalesce(t_active, 0), 0) / 1000.0, server, status
               FROM haproxy WHERE status >= 500 AND ts IS NOT NULL"""
        ).fetchall()
        if rows or con.execute("SELECT count(*) FROM haproxy").fetchone()[0]:
            out = []
            for ts, server, status in rows:
                t = target_of_server(str(server), targets)
                out.append(Failure(float(ts), t, int(status), no_target=t is None))
            return "proxy log", out
    if {"target_port", "elb_status_code", "ts"} <= table_columns(con, "alb"):
        rows = con.execute(
            "SELECT ts, target_port, elb_status_code FROM alb WHERE elb_status_code >= 500"
        ).fetchall()
        if rows:
            return "ALB log", [
                Failure(
                    float(ts),
                    None if tp in (None, "", "-") else str(tp),
                    int(s),
                    tp in (None, "", "-"),
                )
                for ts, tp, s in rows
            ]
    if {"ts", "status", "source"} <= table_columns(con, "requests"):
        rows = con.execute(
            """SELECT ts + coalesce(latency_ms, 0) / 1000.0, status FROM requests
               WHERE source = 'proxy' AND status >= 500 AND ts IS NOT NULL"""
        ).fetchall()
        return "requests", [Failure(float(ts), None, int(s)) for ts, s in rows]
    return "", []


@dataclass(frozen=True)
class _Ev:
    ts: float
    kind: str
    target: str | None
    detail: str
    pid: int | None


def _events(con: duckdb.DuckDBPyConnection) -> list[_Ev]:
    cols = table_columns(con, "events")
    if not {"ts", "kind"} <= cols:
        return []
    target = "target" if "target" in cols else "CAST(NULL AS VARCHAR)"
    rows = con.execute(
        f"SELECT ts, kind, {target}, coalesce(detail, ''), pid FROM events "
        "WHERE source = 'testbed' ORDER BY ts"
    ).fetchall()
    return [_Ev(float(ts), k, t, d, p) for ts, k, t, d, p in rows]


def _gunicorn(con: duckdb.DuckDBPyConnection) -> list[_Ev]:
    if not {"ts", "kind", "source"} <= table_columns(con, "events_all"):
        return []
    rows = con.execute(
        "SELECT ts, kind, coalesce(detail, ''), pid FROM events_all "
        "WHERE source = 'gunicorn' ORDER BY ts"
    ).fetchall()
    return [_Ev(float(ts), k, None, d, p) for ts, k, d, p in rows]


def _num(rx: re.Pattern[str], text: str) -> float | None:
    m = rx.search(text)
    return float(m.group(1)) if m else None


def _first_answer(con: duckdb.DuckDBPyConnection, target: str, after: float) -> float | None:
    """When ``target`` first answered a request after ``after`` (its app really serving)."""
    if "target" not in table_columns(con, "requests"):
        return None
    row = con.execute(
        "SELECT min(ts) FROM requests WHERE target = ? AND ts > ?", [target, after]
    ).fetchone()
    return float(row[0]) if row and row[0] is not None else None


def _deploy(
    fig: ReleaseFigures,
    evs: list[_Ev],
    fails: list[Failure],
    end: float,
    first_answer: Callable[[str, float], float | None],
) -> None:
    """Attribute failures to each target's deregistration, stop and registration windows."""
    starts = [e.ts for e in evs if e.kind == "deploy_started"]
    fig.deploys = len(starts)
    finishes = [e.ts for e in evs if e.kind == "deploy_finished"]
    spans = [(s, min((f for f in finishes if f >= s), default=end)) for s in starts]
    counted: set[int] = set()
    per: dict[str, list[_Ev]] = {}
    for e in evs:
        # Only a deploy's target events: a target killed outside one is target-down's evidence.
        if e.target and any(a <= e.ts <= b for a, b in spans):
            per.setdefault(e.target, []).append(e)
    for target, tevs in per.items():
        mine = [i for i, f in enumerate(fails) if f.target in (target, None)]
        registered = True  # a target of the run starts registered
        drained_at: float | None = None
        for k, e in enumerate(tevs):
            nxt = tevs[k + 1 :]
            if e.kind == "target_deregistered":
                registered = False
                delay = _num(_DELAY, e.detail)
                if delay is not None:
                    fig.drain_delays[target] = delay
                drained = next((x.ts for x in nxt if x.kind == "target_drained"), None)
                drained_at = drained if drained is not None else (e.ts + delay if delay else None)
                if drained_at is not None:
                    hit = [
                        i
                        for i in mine
                        if i not in counted and abs(fails[i].ts - drained_at) <= DRAIN_EDGE_S
                    ]
                    if hit:
                        fig.short_drain[target] = fig.short_drain.get(target, 0) + len(hit)
                        counted.update(hit)
            elif e.kind == "target_stopped":
                back = next((x.ts for x in nxt if x.kind in ("target_healthy",)), end)
                hit = [i for i in mine if i not in counted and e.ts - 0.5 <= fails[i].ts <= back]
                if registered:  # the ALB still sends it requests: stopped before deregistered
                    if hit:
                        fig.stopped_before_deregistered[target] = (
                            fig.stopped_before_deregistered.get(target, 0) + len(hit)
                        )
                        counted.update(hit)
                else:
                    g = _num(_GRACEFUL, e.detail)
                    if g is not None:
                        fig.graceful[target] = g
                    # deregistered and stopped: what still fails was in flight past the
                    # graceful timeout (or the drain never let it finish)
                    if hit:
                        fig.short_graceful[target] = fig.short_graceful.get(target, 0) + len(hit)
                        counted.update(hit)
            elif e.kind == "target_registered":
                registered = True
                healthy = next((x.ts for x in nxt if x.kind == "target_healthy"), end)
                # healthy is not ready: the window lasts until the app first answers
                served = first_answer(target, e.ts)
                until = max(healthy + AFTER_HEALTHY_S, served if served is not None else 0.0)
                hit = [
                    i
                    for i in mine
                    if i not in counted
                    and fails[i].target == target
                    and e.ts <= fails[i].ts <= until
                ]
                if hit:
                    fig.early_register[target] = fig.early_register.get(target, 0) + len(hit)
                    counted.update(hit)
    fig.in_windows = len(counted)


def _oom_kills(gev: list[_Ev]) -> list[_Ev]:
    """Workers SIGKILLed with no WORKER TIMEOUT of theirs in the 5 s before: the OOM killer."""
    timeouts = [(e.ts, e.pid) for e in gev if e.kind == "worker_timeout"]
    return [
        e
        for e in gev
        if e.kind == "worker_killed"
        and "SIGKILL" in e.detail
        and not any(p == e.pid and e.ts - 5.0 <= t <= e.ts for t, p in timeouts)
    ]


def _near(fails: list[Failure], evs: list[_Ev]) -> int:
    return sum(any(abs(f.ts - e.ts) <= NEAR_S for e in evs) for f in fails)


def _redirects(
    fig: ReleaseFigures, con: duckdb.DuckDBPyConnection, counted: tuple[int, int] | None
) -> None:
    if counted is not None:  # (preflights, actuals), counted by the caller's own pass
        fig.redirect_preflights, fig.redirect_actuals = counted
    elif {"kind", "status", "source"} <= table_columns(con, "requests"):
        row = con.execute(
            f"""SELECT count(*) FILTER (WHERE kind = 'preflight' AND cors_step = '{REDIRECT_STEP}'),
                       count(*) FILTER (WHERE kind = 'actual' AND status BETWEEN 300 AND 399
                                        AND source = 'proxy' AND NOT coalesce(cors_ok, false))
                FROM requests"""
        ).fetchone()
        fig.redirect_preflights, fig.redirect_actuals = int(row[0]), int(row[1])
    if {"status", "term"} <= table_columns(con, "haproxy"):
        row = con.execute(
            "SELECT count(*) FROM haproxy WHERE status IN (301, 302, 307, 308) AND term LIKE 'LR%'"
        ).fetchone()
        fig.redirect_log_lines = int(row[0])


def release_figures(
    con: duckdb.DuckDBPyConnection,
    targets: list[str] | None = None,
    end: float | None = None,
    *,
    redirects: tuple[int, int] | None = None,
) -> ReleaseFigures:
    """The release, worker and redirect figures of a dataset; ``targets`` = run.json's list;
    ``redirects``: the requests' (redirected preflights, redirected actuals) when the caller
    has counted them already (analyze, in its pass over the requests), else counted here."""
    listed = list(targets or [])
    fig = ReleaseFigures()
    _redirects(fig, con, redirects)
    evs, gev = _events(con), _gunicorn(con)
    kills = _oom_kills(gev)
    recycles = [e for e in gev if e.kind == "worker_recycled"]
    fig.oom_kills, fig.recycles = len(kills), len(recycles)
    fig.oom_pids = [int(e.pid) for e in kills if e.pid is not None]
    if not kills and not recycles and not any(e.kind == "deploy_started" for e in evs):
        # nothing to attribute failures to: they are not read (a 10 M-row run stays fast)
        return fig
    fig.failure_source, fails = _failures(con, listed)
    fig.failures = len(fails)
    fig.no_routable_503 = sum(f.no_target and f.status == 503 for f in fails)
    stop = end if end is not None else max((f.ts for f in fails), default=0.0) + 1
    _deploy(fig, evs, fails, stop, lambda t, after: _first_answer(con, t, after))
    fig.near_kill, fig.near_recycle = _near(fails, kills), _near(fails, recycles)
    return fig
