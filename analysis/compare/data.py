"""Read what `albprobe compare` needs from one run directory, with DuckDB over its Parquet parts:
per-window counts of each failure producer, the app's latencies with their window, the CORS
failures, per-target figures and the open model's schedule. Everything else is numpy."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analysis import dataset
from core.errors import AlbprobeError

ALL = "(all)"
# failure producers: figure name -> the rows it counts (the same definitions as the analyzer's)
PRODUCERS: dict[str, str] = {
    "proxy_5xx": "source = 'proxy' AND status >= 500",
    "server_5xx": "source = 'server' AND status >= 500",
    "app_error": "source = 'app' AND status >= 400",
    "network": "(source = 'network' OR status = 0)",
    "cors_blocked": "source = 'app' AND NOT cors_ok",
}
# the latency figures are of the app's own good answers: a fast proxy 502 neither hides nor
# fakes a slowdown (failures have their own figures)
LATENCY_ROWS = "kind = 'actual' AND source = 'app' AND status BETWEEN 200 AND 399"
QUANTILES = (0.5, 0.95, 0.99)
SAMPLE_ROWS = 20_000  # latency rows per endpoint kept for the bootstrap (a uniform sample)
WINDOWS = 40  # a run is cut into about this many time blocks ...
MIN_WINDOW_S = 0.5  # ... none shorter than this


@dataclass
class Counts:
    """Per-window request counts of one endpoint (or all): ``n`` and one array per producer."""

    n: np.ndarray
    events: dict[str, np.ndarray]

    @property
    def total(self) -> int:
        return int(self.n.sum())


@dataclass
class Latency:
    """The app's good answers of one endpoint (or all): ``ms``/``window`` are the rows, or a
    uniform sample of them (at most SAMPLE_ROWS, for the bootstrap and the CDF plot); ``n``,
    ``quantiles`` and ``medians`` (per window) are from every row when the reader gave them."""

    ms: np.ndarray
    window: np.ndarray
    n: int = -1
    quantiles: dict[float, float] = field(default_factory=dict)
    medians: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.n < 0:
            self.n = len(self.ms)

    def quantile(self, q: float) -> float | None:
        if q in self.quantiles:
            return self.quantiles[q]
        return float(np.quantile(self.ms, q)) if len(self.ms) else None

    def window_medians(self) -> np.ndarray:
        if self.medians is not None:
            return self.medians
        if not len(self.ms):
            return self.ms
        order = np.lexsort((self.ms, self.window))
        w, x = self.window[order], self.ms[order]
        _, start, cnt = np.unique(w, return_index=True, return_counts=True)
        lo = x[start + (cnt - 1) // 2]
        hi = x[start + cnt // 2]
        return (lo + hi) / 2


@dataclass
class RunData:
    path: Path
    meta: dict[str, Any]
    window_s: float
    span_s: float
    counts: dict[str, Counts] = field(default_factory=dict)
    latency: dict[str, Latency] = field(default_factory=dict)
    cors_failures: list[dict[str, Any]] = field(default_factory=list)
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    scheduled: np.ndarray | None = None
    dropped: np.ndarray | None = None
    timeline: list[dict[str, Any]] = field(default_factory=list)  # per second, for the HTML page

    @property
    def run_id(self) -> str:
        return str(self.meta.get("run_id") or self.path.name)

    @property
    def endpoints(self) -> list[str]:
        return sorted(k for k in self.counts if k != ALL)

    @property
    def requests(self) -> int:
        c = self.counts.get(ALL)
        return c.total if c else 0


def read_meta(path: Path) -> dict[str, Any]:
    """run.json, or AlbprobeError (exit 2) naming what is wrong with the folder."""
    if not path.is_dir():
        raise AlbprobeError(
            f"run directory {path} does not exist or is not a folder",
            hint="pass folders `albprobe run` created, e.g. runs/20261126-130501-step",
        )
    rj = path / "run.json"
    if not rj.exists():
        raise AlbprobeError(
            f"{path}: no run.json, so this is not a run directory",
            hint="pass folders `albprobe run` created (run.json and requests/part-*.parquet)",
        )
    try:
        meta = json.loads(rj.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AlbprobeError(f"{rj}: not valid JSON ({exc})", hint="restore run.json") from exc
    if not isinstance(meta, dict):
        raise AlbprobeError(f"{rj}: not a JSON object", hint="restore run.json")
    return meta


def window_seconds(span_s: float) -> float:
    return max(MIN_WINDOW_S, span_s / WINDOWS)


def load(path: str | Path, meta: dict[str, Any] | None = None) -> RunData:
    """Read one run directory (AlbprobeError, exit 2, when it has no requests)."""
    root = Path(path)
    meta = read_meta(root) if meta is None else meta
    ds = dataset.open_tables(root, ("requests", "schedule"))
    try:
        if not ds.present.get("requests"):
            raise AlbprobeError(
                f"{root}: the requests table is empty or missing (requests/*.parquet)",
                hint="compare runs that sent requests; re-run `albprobe run` if it was cut short",
            )
        con = ds.con
        con.execute("SET enable_progress_bar = false")  # stdout may be --json's document
        t0, t1 = con.execute("SELECT min(ts), max(ts) FROM requests").fetchone()  # type: ignore[misc]
        span = max(float(t1) - float(t0), 0.0)
        w = window_seconds(span)
        # one scan of the Parquet parts: every query below reads this table
        con.execute(
            f"""CREATE TEMP VIEW r AS SELECT ts, kind, source, status, cors_ok, cors_step,
                  cors_message, latency_ms, target, coalesce(endpoint, '?') AS endpoint,
                  CAST(floor((ts - {float(t0)!r}) / {w!r}) AS INTEGER) AS win FROM requests"""
        )
        rd = RunData(root, meta, w, span)
        _counts(con, rd)
        _latency(con, rd)
        rd.cors_failures = _dicts(
            con,
            """SELECT endpoint, kind, coalesce(cors_step, '?') AS cors_step,
                      any_value(cors_message) AS message, count(*) AS count
               FROM r WHERE source = 'app' AND NOT cors_ok GROUP BY 1, 2, 3 ORDER BY 5 DESC""",
        )
        rd.targets = {
            d.pop("target"): d
            for d in _dicts(
                con,
                f"""SELECT target, count(*) AS requests,
                      quantile_cont(latency_ms, 0.95) FILTER (WHERE {LATENCY_ROWS}) AS p95_ms,
                      count(*) FILTER (WHERE status >= 500) AS n5xx
                   FROM r WHERE target IS NOT NULL GROUP BY 1 ORDER BY 1""",
            )
        }
        rd.timeline = _dicts(
            con,
            f"""SELECT floor(ts - {float(t0)!r}) AS t, count(*) AS requests,
                  quantile_cont(latency_ms, 0.95) FILTER (WHERE {LATENCY_ROWS}) AS p95_ms,
                  count(*) FILTER (WHERE status >= 500 OR status = 0 OR NOT cors_ok) AS failures
               FROM r GROUP BY 1 ORDER BY 1""",
        )
        if ds.present.get("schedule"):
            s = con.execute("SELECT scheduled, dropped FROM schedule ORDER BY ts").fetchnumpy()
            rd.scheduled = np.asarray(s["scheduled"], dtype=np.float64)
            rd.dropped = np.asarray(s["dropped"], dtype=np.float64)
        return rd
    finally:
        ds.close()


def _dicts(con: Any, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]


def _scope_sql(by: str = "") -> tuple[str, str]:
    """GROUPING SETS per endpoint and over all endpoints ('(all)'), optionally also by ``by``."""
    extra = f", {by}" if by else ""
    return (
        f"CASE WHEN grouping(endpoint) = 1 THEN '{ALL}' ELSE endpoint END AS scope",
        f"GROUP BY GROUPING SETS ((endpoint{extra}), ({by}))",
    )


def _counts(con: Any, rd: RunData) -> None:
    cols = ", ".join(f"count(*) FILTER (WHERE {sql}) AS {name}" for name, sql in PRODUCERS.items())
    scope, group = _scope_sql("win")
    res = con.execute(
        f"SELECT {scope}, win, count(*) AS n, {cols} FROM r {group} ORDER BY 1, win"
    ).fetchnumpy()
    names = np.asarray(res["scope"], dtype=object)
    for name in dict.fromkeys(names.tolist()):
        sel = names == name
        rd.counts[name] = Counts(
            np.asarray(res["n"], dtype=np.float64)[sel],
            {p: np.asarray(res[p], dtype=np.float64)[sel] for p in PRODUCERS},
        )


def _latency(con: Any, rd: RunData) -> None:
    """Exact quantiles and per-window medians from every good answer (DuckDB), and a uniform
    sample of the rows (a hash of the send time, so the same run always gives the same sample)."""
    scope, group = _scope_sql()
    qs = ", ".join(repr(q) for q in QUANTILES)
    stats = {
        r[0]: (int(r[1]), r[2])
        for r in con.execute(
            f"SELECT {scope}, count(*), quantile_cont(latency_ms, [{qs}]) FROM r "
            f"WHERE {LATENCY_ROWS} AND latency_ms IS NOT NULL {group}"
        ).fetchall()
    }
    scope_w, group_w = _scope_sql("win")
    med = con.execute(
        f"SELECT {scope_w}, median(latency_ms) AS m FROM r "
        f"WHERE {LATENCY_ROWS} AND latency_ms IS NOT NULL {group_w} ORDER BY 1, win"
    ).fetchnumpy()
    med_scope = np.asarray(med["scope"], dtype=object)
    mod = 1_000_003
    keep = {k: min(mod, int(np.ceil(SAMPLE_ROWS / max(n, 1) * mod))) for k, (n, _) in stats.items()}
    eps = [e for e in rd.counts if e != ALL]
    con.execute("CREATE TEMP TABLE eps (endpoint VARCHAR, id INTEGER, keep BIGINT)")
    con.executemany(
        "INSERT INTO eps VALUES (?, ?, ?)", [(e, i, keep.get(e, mod)) for i, e in enumerate(eps)]
    )
    keep_all = keep.get(ALL, mod)
    res = con.execute(
        f"""SELECT e.id, e.keep, r.win, r.latency_ms, hash(r.ts) % {mod} AS h
            FROM r JOIN eps e ON r.endpoint = e.endpoint
            WHERE {LATENCY_ROWS} AND r.latency_ms IS NOT NULL
              AND hash(r.ts) % {mod} < greatest(e.keep, {keep_all})"""
    ).fetchnumpy()
    ids = np.asarray(res["id"], dtype=np.int32)
    h = np.asarray(res["h"], dtype=np.int64)
    ep_keep = np.asarray(res["keep"], dtype=np.int64)
    win = np.asarray(res["win"], dtype=np.int32)
    ms = np.asarray(res["latency_ms"], dtype=np.float64)

    def make(name: str, sel: np.ndarray) -> Latency:
        n, q = stats.get(name, (0, None))
        return Latency(
            ms[sel],
            win[sel],
            n,
            dict(zip(QUANTILES, q, strict=True)) if q else {},
            np.asarray(med["m"], dtype=np.float64)[med_scope == name],
        )

    rd.latency[ALL] = make(ALL, h < keep_all)
    for i, e in enumerate(eps):
        rd.latency[e] = make(e, (ids == i) & (h < ep_keep))
