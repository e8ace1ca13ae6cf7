"""Correlation: per-second timeline and the figures the verdict is built from.

Heavy lifting (10 M requests) is one GROUP BY per table in DuckDB; the per-second series that come
back are small (one row per second), and the conditional rates, lagged correlations and proximity
shares are computed on them with numpy. Every figure is a number or None ("not measured"), so the
verdict can tell "zero" from "unknown".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis import alb_patterns
from analysis import exact_quantiles as eq
from analysis.dataset import Dataset
from analysis.figures import Figures
from analysis.parsers import alb
from analysis.parsers.common import sql_str
from analysis.parsers.haproxy import classify_sql
from analysis.release import REDIRECT_STEP, release_figures
from analysis.targets import breakdown, heat

WORKER_EVENT_KINDS = (
    "worker_timeout",
    "worker_killed",
    "worker_exit",
    "master_stop",
    "target_killed",
)
NEAR_EVENT_S = 3  # "within a few seconds of a worker event"
FAIL_ONSET_RATE = 0.01  # failures begin at the first second with >= 1 % failing (and >= 2)


@dataclass
class Timeline:
    """Per-second series (index = second since ``t0``) for plots and correlation."""

    t0: int = 0
    seconds: int = 0
    series: dict[str, np.ndarray] = field(default_factory=dict)
    events: list[tuple[float, str, str]] = field(default_factory=list)  # (ts, kind, detail)
    # Locust workers lost mid-run: (from, to, worker id); their share of the load is missing there
    gaps: list[tuple[float, float, str]] = field(default_factory=list)
    cloudwatch: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    # 5xx per target per second (the report's heat strip): first second, targets, matrix
    by_target: tuple[int, list[str], np.ndarray] | None = None

    def get(self, name: str) -> np.ndarray:
        return self.series.get(name, np.zeros(self.seconds))

    def gap_seconds(self) -> np.ndarray:
        """True for each second a worker gap touches: part of the load was not sent then."""
        mask = np.zeros(self.seconds, dtype=bool)
        for a, b, _w in self.gaps:
            lo, hi = int(math.floor(a)) - self.t0, int(math.ceil(b)) - self.t0
            mask[max(0, lo) : max(0, min(self.seconds, hi))] = True
        return mask


def _rows(ds: Dataset, sql: str) -> list[dict[str, Any]]:
    cur = ds.con.execute(sql)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def _one(ds: Dataset, sql: str) -> dict[str, Any]:
    rows = _rows(ds, sql)
    return rows[0] if rows else {}


def _clean(v: Any) -> Any:
    if isinstance(v, float | np.floating):
        f = float(v)
        return None if math.isnan(f) or math.isinf(f) else round(f, 6)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    return v


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b:
        return None
    return a / b


# Counts of the requests table, each a condition on the row's shape (source, status, kind, CORS
# verdict, connection reuse): counted once per (second, shape) in one pass (_SHAPES), then summed
# from that small table per second and over the run, instead of ~40 FILTERed counts per row.
_SECOND_COUNTS = (
    ("ok", "source = 'app' AND status BETWEEN 200 AND 399 AND cors_ok"),
    ("proxy_5xx", "source = 'proxy' AND status >= 500"),
    ("s502", "source = 'proxy' AND status = 502"),
    ("s503", "source = 'proxy' AND status = 503"),
    ("s504", "source = 'proxy' AND status = 504"),
    ("server_5xx", "source = 'server' AND status >= 500"),
    ("network", "source = 'network' OR status = 0"),
    ("app_5xx", "source = 'app' AND status >= 500"),
    ("cors_fail", "NOT cors_ok"),
    ("app_cors_fail", "source = 'app' AND NOT cors_ok"),
    ("proxy_5xx_reused", "source = 'proxy' AND status >= 500 AND conn_reused"),
)
_KNOWN = "('app','proxy','server','network')"
_RUN_COUNTS = (
    ("actual", "kind = 'actual'"),
    ("preflight", "kind = 'preflight'"),
    ("errors", "status >= 500 OR status = 0"),
    ("n5xx", "status >= 500"),
    ("proxy_5xx", "source = 'proxy' AND status >= 500"),
    ("proxy_502", "source = 'proxy' AND status = 502"),
    ("proxy_503", "source = 'proxy' AND status = 503"),
    ("proxy_504", "source = 'proxy' AND status = 504"),
    ("server_5xx", "source = 'server' AND status >= 500"),
    ("network", "source = 'network' OR status = 0"),
    ("app_responses", "source = 'app'"),
    ("app_ok", "source = 'app' AND status BETWEEN 200 AND 399"),
    ("app_5xx", "source = 'app' AND status >= 500"),
    ("app_400", "source = 'app' AND status = 400"),
    ("cors_fail", "NOT cors_ok"),
    ("app_cors_fail", "source = 'app' AND NOT cors_ok"),
    ("unattributed", f"source IS NULL OR source NOT IN {_KNOWN}"),
    (
        "unattributed_errors",
        f"(status >= 500 OR status = 0) AND (source IS NULL OR source NOT IN {_KNOWN})",
    ),
    ("proxy_5xx_reuse_known", "source = 'proxy' AND status >= 500 AND conn_reused IS NOT NULL"),
    ("proxy_5xx_reused", "source = 'proxy' AND status >= 500 AND conn_reused"),
    ("reuse_known", "conn_reused IS NOT NULL"),
    ("reused", "conn_reused"),
)
_TARGET = "source IN ('app', 'server')"

# Pass 1 over the Parquet parts: requests per (second, shape), with the sums the figures need.
_SHAPES = f"""CREATE OR REPLACE TEMP TABLE _req_shapes AS
SELECT CAST(floor(ts) AS BIGINT) AS t, source, status, kind, cors_ok, conn_reused,
  count(*) AS n, count(latency_ms) AS n_lat, sum(latency_ms) AS lat_sum,
  max(latency_ms) AS lat_max, count(co_latency_ms) AS co_n, min(ts) AS first_ts, max(ts) AS last_ts,
  count(*) FILTER (WHERE cors_step = '{REDIRECT_STEP}') AS n_redirect_step
FROM requests GROUP BY ALL"""

# Pass 2: histograms of the latencies (exact_quantiles.key_sql buckets) per source and endpoint,
# and of the coordinated-omission latencies; they locate the ranks of the run's quantiles.
# Pass 3: the exact quantiles per second (one sort per second: cheaper than approx_quantile's
# digests) and, in the same scan, the few values of the buckets that hold the run's wanted
# ranks, from which the run's exact quantiles follow (exact_quantiles: the same doubles as
# quantile_cont over the whole run, without holding the whole run's values).
# A per-second quantile keeps every value of its second until the end of its scan (8 bytes a
# row per series), and those states must fit in DuckDB's memory limit: up to
# QUANTILE_ROWS_TOGETHER rows share one scan; beyond, the seconds are read in time ranges of at
# most that many rows (at least one second each), each its own query (the Parquet row groups
# outside a range are skipped on their ts statistics, so the ranges add up to about one scan).
QUANTILE_ROWS_TOGETHER = 16_000_000
# Up to QUANTILE_DIRECT_ROWS rows (a few MB of values) the run's quantiles are quantile_cont over
# the whole table, two more small scans: cheaper there than the histograms' fixed cost.
QUANTILE_DIRECT_ROWS = 250_000
_SECOND_QUANTILES = {
    "lat": "quantile_cont(latency_ms, [0.5, 0.99])",
    "co_p99": "quantile_cont(co_latency_ms, 0.99)",
}
_RUN_QS = [0.5, 0.9, 0.99, 0.999]
_CO_QS = [0.5, 0.99]
_TARGET_QS = [0.5, 0.99]
_MIX_Q = 0.1  # the mix's service time: each endpoint's 10th percentile (mix_service_ms)


@dataclass
class _RunQuantiles:
    """The run's exact quantiles, resolved from histograms and the values of a few buckets."""

    lat: eq.Series
    co: eq.Series | None
    target: eq.Series
    mix: dict[str | None, eq.Series]  # per endpoint, over the target's rows
    needs: list[eq.Need]

    def all(self) -> list[eq.Series]:
        return [self.lat, *([self.co] if self.co else []), self.target, *self.mix.values()]


def _run_histograms(ds: Dataset, with_co: bool) -> _RunQuantiles:
    kl, kc = eq.key_sql("latency_ms"), eq.key_sql("co_latency_ms")
    rq = _RunQuantiles(
        eq.Series("latency_ms", "true", _RUN_QS),
        eq.Series("co_latency_ms", "true", _CO_QS) if with_co else None,
        eq.Series("latency_ms", _TARGET, _TARGET_QS),
        {},
        [],
    )
    sql = (
        f"SELECT source, endpoint, {kl} AS kl, {kc} AS kc, GROUPING(kc) AS g, "
        "count(latency_ms) AS n, count(co_latency_ms) AS co_n FROM requests "
        "GROUP BY GROUPING SETS ((source, endpoint, kl), (kc))"
        if with_co
        else f"SELECT source, endpoint, {kl} AS kl, NULL AS kc, 1 AS g, count(latency_ms) AS n, "
        "0 AS co_n FROM requests GROUP BY ALL"
    )
    for source, endpoint, k_lat, k_co, g, n, co_n in ds.con.execute(sql).fetchall():
        if not g:
            assert rq.co is not None
            rq.co.add(k_co, co_n)
            continue
        rq.lat.add(k_lat, n)
        if source in ("app", "server"):
            rq.target.add(k_lat, n)
            if endpoint not in rq.mix:
                grp = f"{_TARGET} AND endpoint IS NOT DISTINCT FROM " + (
                    "NULL" if endpoint is None else sql_str(endpoint)
                )
                rq.mix[endpoint] = eq.Series("latency_ms", grp, [_MIX_Q])
            rq.mix[endpoint].add(k_lat, n)
    for s in rq.all():
        rq.needs.extend(s.needs())
    for _ in range(4):  # buckets too full to collect: split them (rare: many equal values)
        big = [nd for nd in rq.needs if nd.count > eq.CANDIDATES_MAX]
        if not big:
            break
        for old, moved in eq.refine(ds.con, "requests", big):
            rq.needs = [n for n in rq.needs if n is not old]
            rq.needs.extend({id(n): n for n, *_ in moved if n is not None}.values())
            for s in rq.all():
                s.relocate(old, moved)
    return rq


def _second_batches(ds: Dataset) -> list[str]:
    """WHERE clauses of the per-second scans: time ranges of at most QUANTILE_ROWS_TOGETHER rows
    (whole seconds), the rows without a timestamp on their own; [""]: one scan of everything."""
    per = ds.con.execute(
        "SELECT t, sum(n) FROM _req_shapes GROUP BY 1 ORDER BY 1 NULLS LAST"
    ).fetchall()
    if sum(int(n) for _t, n in per) <= QUANTILE_ROWS_TOGETHER:
        return [""]
    starts: list[int] = []
    rows = 0
    for t, n in per:
        if t is None:
            continue
        if not starts or rows + int(n) > QUANTILE_ROWS_TOGETHER:
            starts.append(int(t))
            rows = 0
        rows += int(n)
    out = []
    for i, a in enumerate(starts):
        lo = f"ts >= {a}" if i else ""
        hi = f"ts < {starts[i + 1]}" if i + 1 < len(starts) else ""
        out.append("WHERE " + (" AND ".join(c for c in (lo, hi) if c) or "ts IS NOT NULL"))
    if per and per[-1][0] is None:
        out.append("WHERE ts IS NULL")
    return out


def _quantile_pass(ds: Dataset, rq: _RunQuantiles | None) -> dict[Any, dict[str, Any]]:
    """{second: {series: value}} of the per-second quantiles; fills ``rq``'s figures from the
    values of its buckets, collected in the same scans."""
    needs = rq.needs if rq else []
    cols = [f"{v} AS {k}" for k, v in _SECOND_QUANTILES.items()]
    cols += [f"list({n.col}) FILTER (WHERE {n.predicate()}) AS _c{i}" for i, n in enumerate(needs)]
    got: list[list[Any]] = [[] for _ in needs]
    out: dict[Any, dict[str, Any]] = {}
    for where in _second_batches(ds):
        sql = f"SELECT CAST(floor(ts) AS BIGINT) AS t, {', '.join(cols)} FROM requests {where} GROUP BY 1"
        for r in _rows(ds, sql):
            for i in range(len(needs)):
                got[i].extend(r.pop(f"_c{i}") or ())
            t = r.pop("t")
            if t is not None:
                out.setdefault(t, {}).update(r)
    if rq:
        for n, vals in zip(needs, got, strict=True):
            n.take(np.asarray(vals, dtype=np.float64))
        eq.interpolate(ds.con, rq.all())
    return out


def _sums(counts: tuple[tuple[str, str], ...]) -> str:
    return ",\n  ".join(f"coalesce(sum(n) FILTER (WHERE {c}), 0) AS {name}" for name, c in counts)


@dataclass
class _RequestPasses:
    """What the passes over the requests table gave: the run's totals, the per-second rows of
    the timeline and the mix's service time."""

    totals: dict[str, Any]
    seconds: list[dict[str, Any]]
    mix_service_ms: float | None  # mix_service_ms(), from the run's quantile passes
    redirects: tuple[int, int]  # release.py's redirected (preflights, actuals), from pass 1


def _request_passes(ds: Dataset) -> _RequestPasses:
    ds.con.execute(_SHAPES)
    tot = _one(
        ds,
        f"""SELECT coalesce(sum(n), 0) AS total, min(first_ts) AS first_ts, max(last_ts) AS last_ts,
          {_sums(_RUN_COUNTS)},
          max(lat_max) AS lat_max, coalesce(sum(co_n), 0) AS co_n,
          max(lat_max) FILTER (WHERE {_TARGET}) AS tlat_max,
          sum(lat_sum) FILTER (WHERE source = 'app' AND status BETWEEN 200 AND 399)
            / sum(n_lat) FILTER (WHERE source = 'app' AND status BETWEEN 200 AND 399) AS app_ok_mean,
          coalesce(sum(n_redirect_step) FILTER (WHERE kind = 'preflight'), 0) AS _redir_pre,
          coalesce(sum(n) FILTER (WHERE kind = 'actual' AND status BETWEEN 300 AND 399
                                  AND source = 'proxy' AND NOT coalesce(cors_ok, false)), 0)
            AS _redir_act
        FROM _req_shapes""",
    )
    redirects = (int(tot.pop("_redir_pre")), int(tot.pop("_redir_act")))
    if int(tot.get("total") or 0) > QUANTILE_DIRECT_ROWS:
        rq = _run_histograms(ds, bool(tot.get("co_n")))
        q = _quantile_pass(ds, rq)
        tot["lat"], tot["tlat"] = rq.lat.result, rq.target.result
        tot["co_lat"] = rq.co.result if rq.co else None
        svc = _mix_service(rq.mix)
    else:
        q = _quantile_pass(ds, None)
        tot.update(
            _one(
                ds,
                f"""SELECT quantile_cont(latency_ms, {_RUN_QS}) AS lat,
                      quantile_cont(co_latency_ms, {_CO_QS}) AS co_lat,
                      quantile_cont(latency_ms, {_TARGET_QS}) FILTER (WHERE {_TARGET}) AS tlat
                    FROM requests""",
            )
        )
        svc = mix_service_ms(ds)
    seconds = _rows(
        ds,
        f"""SELECT t, sum(n) AS n,
          {_sums(_SECOND_COUNTS)},
          sum(lat_sum) / 1000.0 AS busy_all,
          coalesce(sum(lat_sum) FILTER (WHERE {_TARGET}), 0) / 1000.0 AS busy_target,
          coalesce(sum(n) FILTER (WHERE {_TARGET}), 0) AS n_target
        FROM _req_shapes WHERE t IS NOT NULL GROUP BY 1 ORDER BY 1""",
    )
    for r in seconds:
        sq = q.get(r["t"]) or {}
        r["p50"], r["p99"] = sq.get("lat") or (None, None)
        r["co_p99"] = sq.get("co_p99")
    return _RequestPasses(tot, seconds, svc, redirects)


def _request_figures(ds: Dataset, fig: dict[str, Any], passes: _RequestPasses) -> None:
    tot = dict(passes.totals)
    n = tot.get("total") or 0
    fig["requests"] = n
    if not n:
        return
    lat = tot.pop("lat") or [None] * 4
    co = tot.pop("co_lat") or [None, None]
    tlat = tot.pop("tlat") or [None, None]
    fig.update({k: v for k, v in tot.items() if k not in ("total",)})
    fig["duration_s"] = (tot["last_ts"] - tot["first_ts"]) if tot["first_ts"] is not None else 0
    fig["failures"] = tot["proxy_5xx"] + tot["server_5xx"] + tot["network"]
    fig["error_rate"] = tot["errors"] / n
    fig["5xx_rate"] = tot["n5xx"] / n
    fig["failure_rate"] = fig["failures"] / n
    fig["app_cors_fail_rate"] = _ratio(tot["app_cors_fail"], tot["app_responses"])
    fig["p50_ms"], fig["p90_ms"], fig["p99_ms"], fig["p999_ms"] = lat
    fig["max_ms"] = tot["lat_max"]
    fig["co_measured"] = bool(tot["co_n"])
    fig["co_p50_ms"], fig["co_p99_ms"] = co if tot["co_n"] else (None, None)
    fig["target_p50_ms"], fig["target_p99_ms"] = tlat
    fig["target_max_ms"] = tot["tlat_max"]
    fig["share_5xx_reused"] = _ratio(tot["proxy_5xx_reused"], tot["proxy_5xx_reuse_known"])
    fig["share_reused"] = _ratio(tot["reused"], tot["reuse_known"])
    fig["cross_table"] = _rows(
        ds,
        """SELECT coalesce(source, 'unknown') AS source,
                  CASE WHEN cors_ok THEN 'pass' WHEN cors_ok IS NULL THEN 'unknown' ELSE 'fail' END AS cors,
                  sum(n) AS count
           FROM _req_shapes GROUP BY ALL ORDER BY count DESC""",
    )
    fig["by_status"] = _rows(
        ds,
        """SELECT coalesce(source, 'unknown') AS source, status, sum(n) AS count
           FROM _req_shapes WHERE status >= 400 OR status = 0 GROUP BY ALL ORDER BY count DESC LIMIT 20""",
    )
    fig["app_cors_steps"] = _rows(
        ds,
        """SELECT coalesce(cors_step, '?') AS step, any_value(cors_message) AS message, count(*) AS count
           FROM requests WHERE source = 'app' AND NOT cors_ok GROUP BY 1 ORDER BY 3 DESC LIMIT 5""",
    )
    fig["network_errors"] = _rows(
        ds,
        """SELECT coalesce(error, '?') AS error, count(*) AS count FROM requests
           WHERE source = 'network' OR status = 0 GROUP BY 1 ORDER BY 2 DESC LIMIT 5""",
    )


def _health_figures(ds: Dataset, fig: dict[str, Any]) -> None:
    h = _one(
        ds,
        """SELECT count(DISTINCT target) AS targets, count(*) AS samples,
                  count(*) FILTER (WHERE state = 'unhealthy') AS unhealthy_samples,
                  max(in_flight) AS max_in_flight_one, max(queued) AS max_queued,
                  list(DISTINCT collector) AS collectors
           FROM health""",
    )
    fig["health_targets"] = h.get("targets")
    fig["health_samples"] = h.get("samples")
    fig["health_unhealthy_samples"] = h.get("unhealthy_samples")
    fig["max_queued"] = h.get("max_queued")
    fig["health_collectors"] = h.get("collectors")
    # at_capacity: samples taken under the load (from the first recorded request) while every
    # slot was busy (or in-flight unknown, as from AWS): a health check timing out then is the
    # load's doing, not a cold start before the load or a stalled checker.
    slots = _slots(ds.meta.get("capacity") or {}) or 1
    first = fig.get("first_ts")
    under_load = f"AND ts >= {float(first) - 1!r}" if first is not None else ""
    fig["health_reasons"] = _rows(
        ds,
        f"""SELECT state, coalesce(reason, '-') AS reason, any_value(description) AS description,
                  count(*) AS samples, min(ts) AS first_ts,
                  count(*) FILTER (WHERE (in_flight IS NULL OR in_flight >= {int(slots)}) {under_load}) AS at_capacity
           FROM health WHERE state <> 'healthy' GROUP BY 1, 2 ORDER BY samples DESC LIMIT 10""",
    )


def _haproxy_figures(ds: Dataset, fig: dict[str, Any]) -> None:
    rows = _rows(
        ds,
        f"""SELECT {classify_sql()} AS cls, status, count(*) AS count,
                   count(*) FILTER (WHERE t_resp = -1 OR t_resp = 0) AS no_resp_timer,
                   median(t_active) AS median_ta
            FROM haproxy GROUP BY 1, 2 ORDER BY 3 DESC""",
    )
    fig["haproxy_lines"] = sum(r["count"] for r in rows)
    classes: dict[str, int] = {}
    for r in rows:
        classes[r["cls"]] = classes.get(r["cls"], 0) + r["count"]
    fig["haproxy_classes"] = classes
    fig["haproxy_5xx"] = sum(v for k, v in classes.items() if k not in ("ok", "redirect"))
    fig["haproxy_by_class_status"] = rows
    fig["haproxy_503_as_502"] = sum(
        r["count"]
        for r in rows
        if r["status"] == 503 and r["cls"] in ("connect-refused", "connect-timeout", "no-server")
    )
    fig["haproxy_server_closed_no_timer"] = sum(
        r["no_resp_timer"] for r in rows if r["cls"] == "server-closed"
    )
    conc = _one(
        ds,
        """SELECT max(srv_conn) AS max_srv_conn, max(srv_queue) AS max_srv_queue,
                  count(*) FILTER (WHERE server LIKE '%failopen%') AS failopen
           FROM haproxy""",
    )
    # The testbed's check-less backup server on the same address = the ALB failing open.
    fig["haproxy_failopen"] = conc.get("failopen")
    fig["haproxy_max_srv_conn"] = conc.get("max_srv_conn")
    fig["haproxy_max_srv_queue"] = conc.get("max_srv_queue")


def gunicorn_timeout_s(ds: Dataset) -> float:
    """gunicorn's --timeout: the run's capacity, else what analyze was told, else the default."""
    for v in ((ds.meta.get("capacity") or {}).get("timeout"), ds.meta.get("gunicorn_timeout")):
        if isinstance(v, int | float) and v > 0:
            return float(v)
    return alb.GUNICORN_DEFAULT_TIMEOUT_S


def _alb_figures(ds: Dataset, fig: dict[str, Any]) -> None:
    timeout = gunicorn_timeout_s(ds)
    kind = alb.target_closed_kind_sql(timeout)
    a = _one(
        ds,
        f"""SELECT count(*) AS entries, min(ts) AS first_ts, max(ts) AS last_ts,
          count(*) FILTER (WHERE elb_status_code >= 500 AND target_status_code IS NULL) AS elb_5xx,
          count(*) FILTER (WHERE elb_status_code = 502 AND target_status_code IS NULL) AS elb_502,
          count(*) FILTER (WHERE elb_status_code = 503 AND target_status_code IS NULL) AS elb_503,
          count(*) FILTER (WHERE elb_status_code = 504 AND target_status_code IS NULL) AS elb_504,
          count(*) FILTER (WHERE target_status_code >= 500) AS target_5xx,
          count(*) FILTER (WHERE {alb.CONNECT_FAILED_SQL}) AS connect_fail,
          count(*) FILTER (WHERE {alb.TARGET_CLOSED_SQL}) AS target_closed,
          count(*) FILTER (WHERE {kind} = 'keepalive-race') AS keepalive_race,
          count(*) FILTER (WHERE {kind} = 'timeout-kill') AS timeout_kill,
          count(*) FILTER (WHERE {kind} = 'closed-late') AS closed_late,
          count(*) FILTER (WHERE elb_status_code = 504 AND target_status_code IS NULL
              AND request_processing_time = -1) AS connect_timeout_504,
          count(*) FILTER (WHERE elb_status_code = 504 AND target_status_code IS NULL
              AND request_processing_time >= 0) AS response_timeout_504,
          count(*) FILTER (WHERE elb_status_code = 460) AS client_gave_up,
          count(DISTINCT target_port) AS targets,
          quantile_cont(target_processing_time * 1000, [0.5, 0.9, 0.99, 0.999])
              FILTER (WHERE target_processing_time >= 0) AS _q,
          max(target_processing_time) FILTER (WHERE target_processing_time >= 0) * 1000 AS _mx
        FROM alb""",
    )
    lat = {"q": a.pop("_q"), "mx": a.pop("_mx")}  # the target's latency, same scan
    fig.update({f"alb_{k}": v for k, v in a.items()})
    fig["alb_kill_timeout_s"] = timeout  # the gunicorn --timeout the timeout_kill count assumed
    pat = alb_patterns.compute(ds.con, timeout)
    fig["alb_patterns"] = pat.to_dict() if pat else None
    fig["alb_target_ms"] = lat.get("q")
    if not fig.get("requests") and lat.get("q"):
        fig["p50_ms"], fig["p90_ms"], fig["p99_ms"], fig["p999_ms"] = lat["q"]
        fig["max_ms"] = lat.get("mx")
        fig["latency_source"] = "ALB target_processing_time"


def _metrics_figures(ds: Dataset, fig: dict[str, Any]) -> None:
    rows = _rows(
        ds,
        """SELECT metric, stat, sum(value) AS total, max(value) AS peak FROM metrics
           GROUP BY 1, 2 ORDER BY 1""",
    )
    fig["cloudwatch"] = {
        f"{r['metric']}.{r['stat']}": {"sum": r["total"], "max": r["peak"]} for r in rows
    }


def _event_figures(ds: Dataset, fig: dict[str, Any], tl: Timeline) -> None:
    rows = _rows(ds, "SELECT kind, count(*) AS n FROM events_all GROUP BY 1")
    counts = {r["kind"]: r["n"] for r in rows}
    fig["events"] = counts
    sig = _one(
        ds,
        # gunicorn's own kill lines (the testbed also records a worker_killed event of its own)
        """SELECT count(*) FILTER (WHERE kind = 'worker_killed' AND detail LIKE '%SIGKILL%'
                                   AND source = 'gunicorn') AS sigkill,
                  count(*) FILTER (WHERE kind = 'worker_exit') AS exits
           FROM events_all""",
    )
    fig["worker_sigkill"] = sig.get("sigkill", 0)
    # The target stopping during the run (not the testbed shutting gunicorn down after it).
    last = fig.get("last_ts")
    stops = _one(
        ds,
        f"""SELECT count(*) FILTER (WHERE kind = 'target_killed'
                     OR (kind = 'master_stop' AND ts < {float(last) - 1 if last else 1e18!r})) AS n
            FROM events_all""",
    )
    fig["target_stops"] = stops.get("n", 0)
    klass = _one(
        ds,
        f"""SELECT arg_max(detail, ts) AS k FROM events_all
            WHERE kind = 'worker_class' AND ts < {float(last) if last else 1e18!r}""",
    )
    fig["gunicorn_worker_class"] = klass.get("k")
    fig["faults"] = [
        r["detail"]
        for r in _rows(
            ds,
            "SELECT DISTINCT detail FROM events_all WHERE kind = 'fault_on' AND detail IS NOT NULL",
        )
    ]
    # Boot loop: far more worker boots than workers, packed in time.
    boots = [
        r["ts"]
        for r in _rows(ds, "SELECT ts FROM events_all WHERE kind = 'worker_boot' ORDER BY ts")
    ]
    workers = (ds.meta.get("capacity") or {}).get("workers") or 1
    restarts = max(0, len(boots) - int(workers) * max(1, counts.get("master_start", 1)))
    fig["worker_restarts"] = restarts
    dense = 0
    for i in range(len(boots)):
        j = i
        while j < len(boots) and boots[j] - boots[i] <= 60:
            j += 1
        dense = max(dense, j - i)
    fig["boot_loop"] = restarts >= 3 and dense >= 2 * int(workers) + 2
    tl.events = [
        (float(r["ts"]), r["kind"], r["detail"] or "")
        for r in _rows(ds, "SELECT ts, kind, detail FROM events_all ORDER BY ts LIMIT 5000")
    ]


def _timeline(ds: Dataset, fig: dict[str, Any], req: list[dict[str, Any]]) -> Timeline:
    tl = Timeline()
    hea = (
        _rows(
            ds,
            """WITH per AS (
                 SELECT CAST(floor(ts) AS BIGINT) AS t, target,
                        bool_or(state = 'unhealthy') AS unh, bool_or(state = 'healthy') AS hea,
                        max(in_flight) AS inf, max(queued) AS q
                 FROM health GROUP BY 1, 2)
               SELECT t, count(*) FILTER (WHERE unh) AS unhealthy, count(*) FILTER (WHERE hea) AS healthy,
                      count(*) AS targets, sum(inf) AS in_flight, sum(q) AS queued
               FROM per GROUP BY 1 ORDER BY 1""",
        )
        if ds.present.get("health")
        else []
    )
    hap = (
        _rows(
            ds,
            f"""SELECT CAST(floor(ts) AS BIGINT) AS t, count(*) AS n,
                       count(*) FILTER (WHERE status >= 500) AS h5xx,
                       count(*) FILTER (WHERE {classify_sql()} IN ('connect-refused','connect-timeout','no-server')) AS hconnect,
                       count(*) FILTER (WHERE {classify_sql()} = 'server-closed') AS hclosed,
                       max(srv_conn) AS srv_conn
                FROM haproxy WHERE ts IS NOT NULL GROUP BY 1 ORDER BY 1""",
        )
        if ds.present.get("haproxy_log")
        else []
    )
    alb_rows = (
        _rows(
            ds,
            """SELECT CAST(floor(ts) AS BIGINT) AS t, count(*) AS n,
                      count(*) FILTER (WHERE elb_status_code >= 500 AND target_status_code IS NULL) AS a5xx,
                      count(*) FILTER (WHERE target_status_code >= 500) AS t5xx,
                      coalesce(sum(target_processing_time) FILTER (WHERE target_processing_time >= 0), 0) AS busy,
                      quantile_cont(target_processing_time * 1000, [0.5, 0.99]) FILTER (WHERE target_processing_time >= 0) AS q
               FROM alb GROUP BY 1 ORDER BY 1""",
        )
        if ds.present.get("alb_log")
        else []
    )
    for r in alb_rows:  # exact per-second quantiles: one sort, cheaper than approx digests
        r["p50"], r["p99"] = r.pop("q") or (None, None)
    ts = [r["t"] for r in req + hea + hap + alb_rows]
    if not ts:
        return tl
    t0, t1 = min(ts), max(ts)
    # Bound the span: a stray timestamp (e.g. a clock jump) must not allocate years of seconds.
    if t1 - t0 > 7 * 86400:
        t1 = t0 + 7 * 86400
    tl.t0, tl.seconds = int(t0), int(t1 - t0 + 1)

    def put(rows: list[dict[str, Any]], prefix: str = "") -> None:
        if not rows:
            return
        idx = np.array([r["t"] - t0 for r in rows], dtype=np.int64)
        keep = (idx >= 0) & (idx < tl.seconds)
        for k in rows[0]:
            if k == "t":
                continue
            arr = np.zeros(tl.seconds)
            vals = np.array([np.nan if r[k] is None else float(r[k]) for r in rows])
            arr[idx[keep]] = vals[keep]
            tl.series[prefix + k] = arr

    put(req)
    put(hap, "hap_")
    put(alb_rows, "alb_")
    if alb_rows and not req:
        # ALB logs only: target concurrency (Little's law) and latency from target_processing_time.
        for k in ("busy", "p50", "p99"):
            tl.series[{"busy": "busy_target"}.get(k, k)] = tl.series.pop("alb_" + k)
    if hea:
        # Health is sampled every few seconds: carry the last sample forward (step function).
        idx = np.array([r["t"] - t0 for r in hea], dtype=np.int64)
        for k in ("unhealthy", "healthy", "targets", "in_flight", "queued"):
            arr = np.full(tl.seconds, np.nan)
            vals = np.array([np.nan if r[k] is None else float(r[k]) for r in hea])
            keep = (idx >= 0) & (idx < tl.seconds)
            arr[idx[keep]] = vals[keep]
            tl.series["h_" + k] = _ffill(arr)
    tl.by_target = heat(ds.con, list((ds.meta.get("testbed") or {}).get("targets") or []))
    if ds.present.get("metrics"):
        for r in _rows(ds, "SELECT metric, stat, ts, value FROM metrics ORDER BY ts"):
            tl.cloudwatch.setdefault(f"{r['metric']}.{r['stat']}", []).append((r["ts"], r["value"]))
    return tl


def _ffill(a: np.ndarray) -> np.ndarray:
    mask = np.isnan(a)
    idx = np.where(~mask, np.arange(len(a)), 0)
    np.maximum.accumulate(idx, out=idx)
    out = a[idx]
    first = np.argmax(~mask) if (~mask).any() else len(a)
    out[:first] = np.nan
    return out


def _pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    ok = ~(np.isnan(x) | np.isnan(y))
    if ok.sum() < 5:
        return None
    x, y = x[ok], y[ok]
    if x.std() == 0 or y.std() == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def lagged_correlation(x: np.ndarray, y: np.ndarray, max_lag: int = 10) -> tuple[int, float] | None:
    """(lag, r) maximising corr(x[t], y[t+lag]): y follows x by ``lag`` seconds when lag > 0."""
    best: tuple[int, float] | None = None
    n = len(x)
    for lag in range(-max_lag, max_lag + 1):
        if abs(lag) >= n:  # a run shorter than the lag: x[: n - lag] would wrap around
            continue
        if lag >= 0:
            a, b = x[: n - lag], y[lag:]
        else:
            a, b = x[-lag:], y[: n + lag]
        r = _pearson(a, b)
        if r is not None and (best is None or r > best[1]):
            best = (lag, r)
    return best


def _slots(cap: dict[str, Any]) -> int | None:
    """Concurrent requests one target serves: workers x threads (gthread)."""
    slots = cap.get("slots")
    if not slots and cap.get("workers"):
        threads = cap.get("threads") or 1
        slots = cap["workers"] * (
            threads if cap.get("worker_class") == "gthread" or threads > 1 else 1
        )
    return slots


def _derived(ds: Dataset, fig: dict[str, Any], tl: Timeline, mix: float | None) -> None:
    """Conditional rates, proximity shares, onset, capacity and the worker count to recommend."""
    if "n" in tl.series:
        n = tl.get("n")
        fail = tl.get("proxy_5xx") + tl.get("server_5xx") + tl.get("network")
        p5 = tl.get("proxy_5xx")
    else:  # ALB logs only: the ALB-generated 5xx play the proxy's part
        n = tl.get("alb_n")
        p5 = tl.get("alb_a5xx")
        fail = p5 + tl.get("alb_t5xx")
    # Seconds a lost worker's load was missing: per-second rates there say nothing about the
    # load that was asked for, so the rate-based figures below leave them out.
    gap = tl.gap_seconds()
    full = ~gap
    fig["worker_gap_seconds"] = int(gap.sum()) if tl.gaps else None
    cap = ds.meta.get("capacity") or {}
    slots = _slots(cap)
    fig["slots"] = slots
    targets = fig.get("health_targets") or 1
    fig["capacity_total"] = slots * targets if slots else None
    busy_target = tl.get("busy_target")
    in_flight = tl.series.get("h_in_flight")
    # Little's law: requests/s x mean latency = average concurrency (per second bucket).
    fig["peak_littles_concurrency"] = float(np.nanmax(busy_target)) if busy_target.size else None
    fig["peak_in_flight"] = (
        float(np.nanmax(in_flight))
        if in_flight is not None and np.isfinite(in_flight).any()
        else None
    )
    if fig.get("haproxy_max_srv_conn") is not None:
        fig["peak_in_flight"] = max(fig["peak_in_flight"] or 0, fig["haproxy_max_srv_conn"])
    peak = (
        fig["peak_in_flight"]
        if fig["peak_in_flight"] is not None
        else fig["peak_littles_concurrency"]
    )
    fig["peak_concurrency"] = peak
    fig["utilisation"] = _ratio(peak, fig["capacity_total"])
    timeout = cap.get("timeout")
    if timeout and fig.get("target_p99_ms") is not None:
        fig["target_p99_over_timeout"] = fig["target_p99_ms"] / (timeout * 1000)
        fig["target_max_over_timeout"] = (fig.get("target_max_ms") or 0) / (timeout * 1000)
    # Conditional failure rates: while any target is unhealthy vs while all are healthy.
    unh = tl.series.get("h_unhealthy")
    if unh is not None and n.sum():
        bad = np.nan_to_num(unh) > 0
        fig["seconds_unhealthy"] = int(bad.sum())
        fig["share_time_unhealthy"] = float(bad.mean())
        fig["failure_rate_unhealthy"] = _ratio(float(fail[bad].sum()), float(n[bad].sum()))
        fig["failure_rate_healthy"] = _ratio(float(fail[~bad].sum()), float(n[~bad].sum()))
        fig["share_failures_while_unhealthy"] = _ratio(float(fail[bad].sum()), float(fail.sum()))
        rate = np.where(n > 0, fail / np.maximum(n, 1), np.nan)
        lc = lagged_correlation(bad.astype(float), rate)
        fig["health_failure_lag_s"], fig["health_failure_r"] = lc if lc else (None, None)
    # Share of proxy 5xx within a few seconds of a worker event.
    # (the master stopping after the last request is the run's own shutdown, not an event)
    last = fig.get("last_ts") or float("inf")
    worker_ev = [
        e
        for e in tl.events
        if e[1] in WORKER_EVENT_KINDS and not (e[1] == "master_stop" and e[0] >= last - 1)
    ]
    if p5.sum() and tl.seconds:
        near = np.zeros(tl.seconds, dtype=bool)
        for ts, _k, _d in worker_ev:
            i = int(ts) - tl.t0
            near[max(0, i - NEAR_EVENT_S) : max(0, min(tl.seconds, i + NEAR_EVENT_S + 1))] = True
        fig["share_5xx_near_worker_event"] = float(p5[near].sum() / p5.sum()) if worker_ev else 0.0
        # The closed-connection 502s alone (HAProxy SH--/SD--), the keep-alive race's own failures,
        # judged apart from the failed connects that another cause (a stopped target) explains.
        closed = tl.series.get("hap_hclosed")
        if closed is not None and closed.sum():
            total = float(closed.sum())
            fig["share_closed_near_worker_event"] = (
                float(closed[near].sum() / total) if worker_ev else 0.0
            )
            unh_now = tl.series.get("h_unhealthy")
            if unh_now is not None:
                fig["share_closed_while_unhealthy"] = float(
                    closed[np.nan_to_num(unh_now) > 0].sum() / total
                )
        # Share of proxy 5xx while the target was stopped (stop -> next start + 3 s).
        stop_win = np.zeros(tl.seconds, dtype=bool)
        starts = [ts for ts, k, _d in tl.events if k in ("target_started", "master_start")]
        for ts, k, _d in worker_ev:
            if k in ("target_killed", "master_stop"):
                nxt = min((x for x in starts if x > ts), default=ts + 60)
                a, b = int(ts) - tl.t0 - 1, int(nxt) - tl.t0 + 3
                stop_win[max(0, a) : max(0, min(tl.seconds, b + 1))] = True
        fig["share_5xx_while_target_stopped"] = float(p5[stop_win].sum() / p5.sum())
        # Low load: target concurrency under half the capacity (or under the run's median rps);
        # not the seconds whose load was low because a worker was lost.
        if fig["capacity_total"]:
            low = busy_target < 0.5 * fig["capacity_total"]
        else:
            sent = (n > 0) & full
            low = n <= np.median(n[sent]) if sent.any() else np.ones(tl.seconds, dtype=bool)
        p5_full = float(p5[full].sum())
        fig["share_5xx_low_load"] = float(p5[low & full].sum() / p5_full) if p5_full else None
        seconds_with = int((p5 > 0).sum())
        fig["proxy_5xx_seconds"] = seconds_with
        fig["proxy_5xx_max_per_s"] = int(p5.max())
        fig["proxy_5xx_spread"] = seconds_with / float(p5.sum())  # 1.0 = one per second, sporadic
    # Capacity correlation: does the failure rate follow target concurrency?
    if n[full].sum() and busy_target[full].sum():
        rate = np.where(n > 0, fail / np.maximum(n, 1), np.nan)
        fig["concurrency_failure_r"] = _pearson(busy_target[full], rate[full])
        hi = (busy_target >= 0.8 * fig["capacity_total"]) & full if fig["capacity_total"] else None
        if hi is not None and hi.any():
            lo = ~hi & full
            fig["failure_rate_at_capacity"] = _ratio(float(fail[hi].sum()), float(n[hi].sum()))
            fig["failure_rate_below_capacity"] = _ratio(float(fail[lo].sum()), float(n[lo].sum()))
            fig["seconds_at_capacity"] = int(hi.sum())
    # Onset: first second where failures reach 1 % (and at least 2), and the load at that moment.
    if fail.sum():
        onset = np.where((fail >= 2) & (fail >= FAIL_ONSET_RATE * np.maximum(n, 1)))[0]
        if onset.size:
            i = int(onset[0])
            fig["failure_onset_ts"] = float(tl.t0 + i)
            fig["failure_onset_offset_s"] = float(i)
            fig["failure_onset_rps"] = float(n[i]) if full[i] else None
            lo, hi_i = max(0, i - 2), i + 1
            fig["failure_onset_concurrency"] = float(np.nanmax(busy_target[lo:hi_i]))
            if in_flight is not None and np.isfinite(in_flight[lo:hi_i]).any():
                fig["failure_onset_in_flight"] = float(np.nanmax(in_flight[lo:hi_i]))
    # Worker count for the measured load: p95 of per-second throughput x the service time
    # (median latency in unsaturated, failure-free seconds), +30 % headroom.
    n_t = tl.get("n_target")
    p50 = tl.get("p50")
    if n_t.sum():
        calm = (n > 0) & (fail == 0) & full
        if fig["capacity_total"]:
            calm &= busy_target < 0.5 * fig["capacity_total"]
        svc = float(np.nanmedian(p50[calm])) if calm.any() else fig.get("target_p50_ms")
        # Little's law needs the *mean* service time; a median of medians sees only the fast
        # endpoints of a mix. Weight each endpoint's unqueued latency by its share.
        if mix is not None:
            svc = mix
        # Demand on the app: requests minus those that never could reach it (failed connects).
        demand = np.clip(n - tl.get("hap_hconnect"), 0, None) if "hap_hconnect" in tl.series else n
        sent = (demand > 0) & full
        offered = float(np.percentile(demand[sent], 95)) if sent.any() else 0.0
        if svc:
            threads = (
                int(cap.get("threads") or 1) if cap.get("worker_class") in (None, "gthread") else 1
            )
            need = offered * svc / 1000.0 * 1.3
            fig["service_ms"] = svc
            fig["offered_rps_p95"] = offered
            fig["needed_slots"] = need / max(1, targets)
            fig["recommended_threads"] = threads
            fig["recommended_workers"] = max(1, math.ceil(need / max(1, targets) / threads))


def mix_service_ms(ds: Dataset) -> float | None:
    """Mean service time of the request mix: sum over endpoints of share x the endpoint's 10th
    percentile latency at the target. Under saturation even medians carry queueing delay; the
    low percentile is the latency of a request that did not wait, i.e. the service time.
    (analyze gets the same figure from its passes: _request_passes, _mix_service.)"""
    if not ds.present.get("requests"):
        return None
    row = _one(
        ds,
        f"""
        SELECT sum(n * med) / sum(n) AS svc FROM (
          SELECT endpoint, count(*) AS n, quantile_cont(latency_ms, {_MIX_Q}) AS med FROM requests
          WHERE {_TARGET} AND latency_ms IS NOT NULL GROUP BY endpoint)
    """,
    )
    return _service_or_none(row.get("svc"))


def _service_or_none(v: float | None) -> float | None:
    return float(v) if v is not None and math.isfinite(v) and v > 0 else None


def _mix_service(mix: dict[str | None, eq.Series]) -> float | None:
    """mix_service_ms from the per-endpoint series of the run's passes."""
    num = den = 0.0
    for s in mix.values():
        n = sum(s.hist.values())
        if n and s.result:
            num += n * s.result[0]
            den += n
    return _service_or_none(num / den) if den else None


def compute(ds: Dataset) -> tuple[Figures, Timeline]:
    """All figures for the verdict, plus the per-second timeline for the report."""
    fig: dict[str, Any] = {"present": dict(ds.present)}
    meta = ds.meta
    fig["capacity"] = meta.get("capacity")
    fig["proxy"] = meta.get("proxy")
    fig["origin"] = meta.get("origin")
    fig["run_status"] = meta.get("status")
    passes = _request_passes(ds) if ds.present.get("requests") else None
    if passes:
        _request_figures(ds, fig, passes)
    if ds.present.get("health"):
        _health_figures(ds, fig)
    if ds.present.get("haproxy_log"):
        _haproxy_figures(ds, fig)
    if ds.present.get("alb_log"):
        _alb_figures(ds, fig)
    if ds.present.get("metrics"):
        _metrics_figures(ds, fig)
    tl = _timeline(ds, fig, passes.seconds if passes else [])
    gaps = (meta.get("workers") or {}).get("gaps") or []
    fig["worker_gaps"] = [
        {k: g.get(k) for k in ("worker_id", "from", "to", "reason")} for g in gaps
    ]
    tl.gaps = [
        (float(g["from"]), float(g["to"] if g.get("to") is not None else g["from"]), g["worker_id"])
        for g in gaps
    ]
    _event_figures(ds, fig, tl)
    if tl.seconds:
        _derived(ds, fig, tl, passes.mix_service_ms if passes else None)
    _target_figures(ds, fig, passes.redirects if passes else None)
    fig["parse"] = {k: v.as_dict() for k, v in ds.parse_stats.items()}
    fig["notes"] = list(ds.notes)
    return Figures.from_dict(_clean(fig)), tl


def _target_figures(
    ds: Dataset, fig: dict[str, Any], redirects: tuple[int, int] | None = None
) -> None:
    """The per-target split and the release / worker / redirect figures (several targets, deploys
    and worker events of the testbed's recorded events; the proxy's or ALB's log per target)."""
    targets = list((ds.meta.get("testbed") or {}).get("targets") or [])
    split = breakdown(ds.con, targets)
    if split.targets or split.no_target:
        fig["target_breakdown"] = split.to_dict()
    end = ds.meta.get("ended_at") or fig.get("last_ts")
    rel = release_figures(ds.con, targets, float(end) if end else None, redirects=redirects)
    fig["release"] = rel.to_dict()
    if ds.present.get("requests"):
        fig["proxy_redirect_fail"] = rel.redirect_preflights + rel.redirect_actuals
