"""Which target the failures came from: the per-target breakdown of a run (or of ALB logs).

A proxy's error page names no target, so the recorded requests cannot say where a 502 came from.
The proxy's own log can: HAProxy's ``backend/server`` field on the testbed, the ALB's
``target:port`` field in its access logs. The requests' ``target`` column (the app's
``X-Albprobe-Target`` header) counts what each target answered, and the health table's per-target
rows say which target was unhealthy. Together they give the "one of N targets" pattern: the
failures come from one target while the others serve.

Pure over a DuckDB connection holding the dataset's tables (analysis/dataset.py).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

import duckdb
import numpy as np

from analysis.parsers import alb as alb_parser

# The share of the target-attributed failures one target must hold to be "the" failing target.
ONE_TARGET_SHARE = 0.8
UNHEALTHY_STATES = ("unhealthy", "draining", "unused")
# The testbed names target i's HAProxy server "target" (i = 1) or "target-<i>", its fail-open
# backup "<name>-failopen" (testbed/haproxy.py, server_name); run.json lists the targets in order.
_SERVER = re.compile(r"^target(?:-(\d+))?(?:-failopen|-blocked)?$")


@dataclass(frozen=True)
class TargetStats:
    target: str  # ip:port
    answered: int  # responses that named it (requests.target), or log lines routed to it
    failed: int  # proxy-generated 5xx of requests routed to it (proxy / ALB log; _PROXY_MADE)
    unhealthy_samples: int  # health samples not healthy (unhealthy, draining, unused)
    health_samples: int


@dataclass(frozen=True)
class TargetBreakdown:
    source: str  # where the failures per target were read: "proxy log", "ALB log" or ""
    targets: tuple[TargetStats, ...]
    no_target: int  # proxy 5xx with no target at all (<NOSRV>, the ALB's "-"): none routable

    @property
    def n(self) -> int:
        return len(self.targets)

    @property
    def failed(self) -> int:
        return sum(t.failed for t in self.targets)

    def one_of_n(self) -> TargetStats | None:
        """The target the failures came from, when there are several and one holds most of them."""
        if self.n < 2 or self.failed == 0:
            return None
        top = max(self.targets, key=lambda t: t.failed)
        return top if top.failed >= ONE_TARGET_SHARE * self.failed else None

    def pattern(self) -> str | None:
        """'1 of 2 targets: 127.0.0.3:8000 (40 of 41 proxy 5xx in the proxy log)', or None."""
        top = self.one_of_n()
        if top is None:
            return None
        return (
            f"1 of {self.n} targets: {top.target} ({top.failed:,} of {self.failed:,} proxy 5xx in the "
            f"{self.source}; the other targets served"
            f" {sum(t.answered for t in self.targets if t is not top):,} requests)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "targets": [asdict(t) for t in self.targets],
            "no_target": self.no_target,
            "one_of_n": self.pattern(),
        }


def target_of_server(server: str, targets: list[str]) -> str | None:
    """The ip:port of a testbed HAProxy server name (None: not a target, e.g. <NOSRV>)."""
    m = _SERVER.match(server or "")
    if not m:
        return None
    i = int(m.group(1) or 1)
    if 1 <= i <= len(targets):
        return targets[i - 1]
    # a target the run did not list (an old run): the server's name, without the backup suffix
    return "target" if i == 1 else f"target-{i}"


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    """The columns a dataset table has (empty when it does not exist)."""
    try:
        return {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}
    except duckdb.Error:
        return set()


def _answered(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    if "target" not in table_columns(con, "requests"):
        return {}
    rows = con.execute(
        "SELECT target, count(*) FROM requests WHERE target IS NOT NULL GROUP BY 1"
    ).fetchall()
    return {str(t): int(n) for t, n in rows}


def _health(con: duckdb.DuckDBPyConnection, targets: list[str]) -> dict[str, tuple[int, int]]:
    if "target" not in table_columns(con, "health"):
        return {}
    states = ", ".join(f"'{s}'" for s in UNHEALTHY_STATES)
    rows = con.execute(
        f"""SELECT target, count(*) FILTER (WHERE state IN ({states})), count(*)
            FROM health WHERE target IS NOT NULL GROUP BY 1"""
    ).fetchall()
    out: dict[str, tuple[int, int]] = {}
    for t, bad, n in rows:
        # health rows name a target by ip:port; an old testbed run by its server name
        key = t if ":" in str(t) else (target_of_server(str(t), targets) or str(t))
        b0, n0 = out.get(key, (0, 0))
        out[key] = (b0 + int(bad), n0 + int(n))
    return out


# A 5xx the proxy made itself, not one the app (or gunicorn) returned through it: a busy API's own
# 500s, spread over every target, would otherwise bury the one target the proxy cannot reach.
# HAProxy: the session ended abnormally (termination state not "-...") or found no server; the ALB:
# no target status (its documented "-").
_PROXY_MADE = {
    "haproxy": "status >= 500 AND (term NOT LIKE '-%' OR server = '<NOSRV>')",
    "alb": "elb_status_code >= 500 AND target_status_code IS NULL",
}


def _proxy_log(
    con: duckdb.DuckDBPyConnection, targets: list[str]
) -> tuple[str, dict[str, tuple[int, int]], int]:
    """(source, {target: (lines, proxy-made 5xx)}, proxy-made 5xx without a target) from the
    HAProxy or ALB log."""
    if {"server", "status", "term"} <= table_columns(con, "haproxy"):
        rows = con.execute(
            f"""SELECT server, count(*), count(*) FILTER (WHERE {_PROXY_MADE["haproxy"]})
               FROM haproxy GROUP BY 1"""
        ).fetchall()
        per: dict[str, tuple[int, int]] = {}
        none = 0
        for server, n, bad in rows:
            t = target_of_server(str(server), targets)
            if t is None:
                none += int(bad)
                continue
            n0, b0 = per.get(t, (0, 0))
            per[t] = (n0 + int(n), b0 + int(bad))
        if per or none:
            return "proxy log", per, none
    cols = table_columns(con, "alb")
    if {"target_port", "elb_status_code", "target_status_code"} <= cols:
        # a listener rule's fixed response asked no target: not "no routable target"
        fixed = alb_parser.FIXED_RESPONSE_SQL if "actions_executed" in cols else "false"
        rows = con.execute(
            f"""SELECT target_port, count(*), count(*) FILTER (WHERE {_PROXY_MADE["alb"]}),
                      count(*) FILTER (WHERE {_PROXY_MADE["alb"]} AND {fixed})
               FROM alb GROUP BY 1"""
        ).fetchall()
        per, none = {}, 0
        for tp, n, bad, by_rule in rows:
            if tp in (None, "", "-"):
                none += int(bad) - int(by_rule)
            else:
                per[str(tp)] = (int(n), int(bad))
        if per or none:
            return "ALB log", per, none
    return "", {}, 0


def breakdown(con: duckdb.DuckDBPyConnection, targets: list[str] | None = None) -> TargetBreakdown:
    """The per-target split of a dataset; ``targets`` = run.json's testbed targets, in order."""
    listed = list(targets or [])
    answered = _answered(con)
    health = _health(con, listed)
    if not listed and len(health) == 1:
        listed = list(health)  # a run from before several targets: its one health target
    source, logged, none = _proxy_log(con, listed)
    names = list(dict.fromkeys([*listed, *answered, *health, *logged]))
    stats = tuple(
        TargetStats(
            target=t,
            answered=answered.get(t, logged.get(t, (0, 0))[0]),
            failed=logged.get(t, (0, 0))[1],
            unhealthy_samples=health.get(t, (0, 0))[0],
            health_samples=health.get(t, (0, 0))[1],
        )
        for t in names
    )
    return TargetBreakdown(source=source, targets=stats, no_target=none)


# The heat strip's span: at most a week of seconds (a stray timestamp must not allocate years).
MAX_HEAT_S = 7 * 86400


def heat(
    con: duckdb.DuckDBPyConnection, targets: list[str] | None = None
) -> tuple[int, list[str], np.ndarray] | None:
    """The proxy-generated 5xx per target per second, from the HAProxy or ALB log: (first second, target
    names with '-' = no target last, matrix targets x seconds), for the report's heat strip, where
    a burst on one target shows at a glance. None without a proxy 5xx."""
    listed = list(targets or [])
    rows: list[tuple[int, str, int]] = []
    if {"server", "status", "term", "ts"} <= table_columns(con, "haproxy"):
        for t, server, n in con.execute(
            f"""SELECT CAST(floor(ts) AS BIGINT), server,
                      count(*) FILTER (WHERE {_PROXY_MADE["haproxy"]})
               FROM haproxy WHERE ts IS NOT NULL GROUP BY 1, 2"""
        ).fetchall():
            rows.append((int(t), target_of_server(str(server), listed) or "-", int(n)))
    if not rows and {"target_port", "elb_status_code", "target_status_code", "ts"} <= table_columns(
        con, "alb"
    ):
        rows = [
            (int(t), str(tp), int(n))
            for t, tp, n in con.execute(
                f"""SELECT CAST(floor(ts) AS BIGINT), coalesce(target_port, '-'),
                          count(*) FILTER (WHERE {_PROXY_MADE["alb"]})
                   FROM alb WHERE ts IS NOT NULL GROUP BY 1, 2"""
            ).fetchall()
        ]
    if not any(n for _t, _x, n in rows):
        return None
    t0 = min(t for t, _x, _n in rows)
    t1 = min(max(t for t, _x, _n in rows), t0 + MAX_HEAT_S)
    names = sorted({x for _t, x, _n in rows}, key=lambda x: (x == "-", x))
    m = np.zeros((len(names), t1 - t0 + 1))
    idx = {x: i for i, x in enumerate(names)}
    for t, x, n in rows:
        if t <= t1:
            m[idx[x], t - t0] += n
    return t0, names, m
