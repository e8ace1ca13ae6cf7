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
from analysis.exact_quantiles import quantiles_of
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
        return int(round(float(self.n.sum())))  # weighted counts (mix.py) are not whole


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
    # each endpoint's counts over every window of the run (zeros kept), aligned for reweighting
    endpoint_windows: dict[str, Counts] = field(default_factory=dict)
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
        # per endpoint: its good answers (latency rows), and the span and size of the run
        per_ep = con.execute(
            f"""SELECT coalesce(endpoint, '?') AS e, min(ts), max(ts), count(*),
                      count(*) FILTER (WHERE {LATENCY_ROWS} AND latency_ms IS NOT NULL)
               FROM requests GROUP BY 1 ORDER BY 1"""
        ).fetchall()
        t0, t1 = min(r[1] for r in per_ep), max(r[2] for r in per_ep)
        span = max(float(t1) - float(t0), 0.0)
        w = window_seconds(span)
        con.execute(
            f"""CREATE TEMP VIEW r AS SELECT ts, kind, source, status, cors_ok, cors_step,
                  cors_message, latency_ms, target, coalesce(endpoint, '?') AS endpoint,
                  CAST(floor((ts - {float(t0)!r}) / {w!r}) AS INTEGER) AS win,
                  CAST(floor(ts - {float(t0)!r}) AS INTEGER) AS sec FROM requests"""
        )
        rd = RunData(root, meta, w, span)
        eps_n = {str(r[0]): int(r[4]) for r in per_ep}
        _read_rows(con, rd, eps_n, sum(int(r[3]) for r in per_ep))
        rd.cors_failures = _dicts(
            con,
            """SELECT endpoint, kind, coalesce(cors_step, '?') AS cors_step,
                      any_value(cors_message) AS message, count(*) AS count
               FROM r WHERE source = 'app' AND NOT cors_ok GROUP BY 1, 2, 3 ORDER BY 5 DESC""",
        )
        rd.targets = _by_address(
            meta,
            {
                d.pop("target"): d
                for d in _dicts(
                    con,
                    f"""SELECT target, count(*) AS requests,
                      quantile_cont(latency_ms, 0.95) FILTER (WHERE {LATENCY_ROWS}) AS p95_ms,
                      count(*) FILTER (WHERE status >= 500) AS n5xx
                   FROM r WHERE target IS NOT NULL GROUP BY 1 ORDER BY 1""",
                )
            },
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


# each request's producer as one bit (PRODUCERS' order), and the timeline's "failure" bit
_FLAGS = " + ".join(
    f"CASE WHEN {sql} THEN {1 << i} ELSE 0 END" for i, sql in enumerate(PRODUCERS.values())
)
_FAILED_BIT = 1 << len(PRODUCERS)
_FAILED = "status >= 500 OR status = 0 OR NOT cors_ok"
_MOD = 1_000_003  # the sample keeps rows whose hash(ts) % _MOD falls under a per-scope bound


def _read_rows(con: Any, rd: RunData, eps_n: dict[str, int], rows: int) -> None:
    """Every figure that needs the rows, from one scan into numpy: per-window counts of each
    producer, exact quantiles and per-window medians of the good answers (np.partition picks
    quantile_cont's order statistics without a sort), the timeline per second, and a uniform
    sample for the bootstrap (a hash of the send time: the same run always gives the same
    sample). ``eps_n``: each endpoint's good answers; ``rows``: the run's requests."""
    eps = list(eps_n)
    lat_n = {ALL: sum(eps_n.values()), **eps_n}
    keep = {k: min(_MOD, int(np.ceil(SAMPLE_ROWS / max(n, 1) * _MOD))) for k, n in lat_n.items()}
    keep_ep = np.array([keep[e] for e in eps], dtype=np.int64)
    con.execute("CREATE TEMP TABLE eps (endpoint VARCHAR, id SMALLINT)")
    con.executemany("INSERT INTO eps VALUES (?, ?)", [(e, i) for i, e in enumerate(eps)])
    ep = np.empty(rows, dtype=np.int16)
    win = np.empty(rows, dtype=np.int32)
    sec = np.empty(rows, dtype=np.int32)
    ms = np.empty(rows, dtype=np.float64)  # NaN: not a good answer
    flags = np.empty(rows, dtype=np.uint8)
    sample: list[tuple[np.ndarray, ...]] = []
    reader = con.sql(
        f"""SELECT e.id, r.win, r.sec,
                   CASE WHEN {LATENCY_ROWS} THEN r.latency_ms END AS ms,
                   CAST({_FLAGS} + CASE WHEN {_FAILED} THEN {_FAILED_BIT} ELSE 0 END AS UTINYINT),
                   CAST(hash(r.ts) % {_MOD} AS UINTEGER) AS h
            FROM r JOIN eps e ON r.endpoint = e.endpoint"""
    ).to_arrow_reader(1_000_000)
    at = 0
    for batch in reader:
        cols = [c.to_numpy(zero_copy_only=False) for c in batch.columns]
        k = len(cols[0])
        if at + k > rows:
            break
        for arr, col in zip((ep, win, sec, ms, flags), cols, strict=False):
            arr[at : at + k] = col
        h = cols[5]
        pick = (h < np.maximum(keep_ep[cols[0]], keep[ALL])) & ~np.isnan(ms[at : at + k])
        sample.append((cols[0][pick], cols[1][pick], cols[3][pick], h[pick]))
        at += k
    if at != rows:  # the run changed between the two scans
        raise AlbprobeError(
            f"{rd.path}: its requests changed while being read ({at:,} rows, then {rows:,})",
            hint="compare runs that have finished",
        )
    _count(rd, eps, ep, win, flags)
    good = ~np.isnan(ms)
    # the good answers grouped by window, then second (a stable sort of nearly sorted keys)
    g_ep, g_win, g_sec, g_ms = ep[good], win[good], sec[good], ms[good]
    order = np.argsort(g_win.astype(np.int64) * (int(sec.max()) + 2) + g_sec, kind="stable")
    g_ep, g_win, g_sec, g_ms = g_ep[order], g_win[order], g_sec[order], g_ms[order]
    del order
    if not sample:
        sample.append((g_ep, g_win, g_ms, np.empty(0, dtype=np.int64)))
    s_ep, s_win, s_ms, s_h = (np.concatenate(c) for c in zip(*sample, strict=True))
    # the sample in a fixed order (the scan's order depends on DuckDB's threads)
    so = np.lexsort((s_win, s_ms, s_ep))
    s_ep, s_win, s_ms, s_h = s_ep[so], s_win[so], s_ms[so], s_h[so]

    def latency(x: np.ndarray, w: np.ndarray, sel: np.ndarray) -> Latency:
        return Latency(
            s_ms[sel].astype(np.float64),
            s_win[sel].astype(np.int32),
            len(x),
            dict(zip(QUANTILES, quantiles_of(x, QUANTILES), strict=True)) if len(x) else {},
            _window_medians(x, w),
        )

    rd.latency[ALL] = latency(g_ms, g_win, s_h < keep[ALL])
    if len(eps) == 1 and keep[eps[0]] == keep[ALL]:  # one endpoint: the same figures
        rd.latency[eps[0]] = rd.latency[ALL]
    else:
        by_ep = np.argsort(g_ep, kind="stable")  # each endpoint's rows stay in window order
        bounds = np.searchsorted(g_ep[by_ep], np.arange(len(eps) + 1))
        e_ms, e_win = g_ms[by_ep], g_win[by_ep]
        for i, e in enumerate(eps):
            a, b = bounds[i], bounds[i + 1]
            rd.latency[e] = latency(e_ms[a:b], e_win[a:b], (s_ep == i) & (s_h < keep_ep[i]))
    # the timeline: every second with requests, and the p95 of its good answers
    n_sec = np.bincount(sec)
    failed = np.bincount(sec[(flags & _FAILED_BIT) > 0], minlength=len(n_sec))
    starts, ends = _segments(g_sec)
    p95 = {
        int(g_sec[a]): quantiles_of(g_ms[a:b], (0.95,))[0]
        for a, b in zip(starts, ends, strict=True)
    }
    rd.timeline = [
        {"t": float(t), "requests": int(n_sec[t]), "p95_ms": p95.get(t), "failures": int(failed[t])}
        for t in np.flatnonzero(n_sec).tolist()
    ]


def _count(rd: RunData, eps: list[str], ep: np.ndarray, win: np.ndarray, flags: np.ndarray) -> None:
    """Per-window requests and producer counts of each endpoint and of all: the windows in which
    the scope has requests, in time order."""
    nw = int(win.max()) + 1
    key = ep.astype(np.int64) * nw + win
    size = len(eps) * nw

    def per(sel: np.ndarray | None) -> np.ndarray:
        k = key if sel is None else key[sel]
        return np.bincount(k, minlength=size).reshape(len(eps), nw).astype(np.float64)

    n = per(None)
    events = {p: per((flags & (1 << i)) > 0) for i, p in enumerate(PRODUCERS)}
    scopes = {ALL: (n.sum(axis=0), {p: v.sum(axis=0) for p, v in events.items()})}
    for i, e in enumerate(eps):
        scopes[e] = (n[i], {p: v[i] for p, v in events.items()})
        rd.endpoint_windows[e] = Counts(*scopes[e])
    for name in sorted(scopes):
        tot, ev = scopes[name]
        has = tot > 0
        rd.counts[name] = Counts(tot[has], {p: v[has] for p, v in ev.items()})


def _segments(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end of each run of equal values in ``keys`` (grouped: sorted or ordered)."""
    cut = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    return np.r_[0, cut], np.r_[cut, len(keys)]


def _window_medians(ms: np.ndarray, win: np.ndarray) -> np.ndarray:
    """quantile_cont(0.5) of each window's rows (``ms`` grouped by ``win``, in window order)."""
    if not len(ms):
        return np.empty(0)
    starts, ends = _segments(win)
    return np.array([quantiles_of(ms[a:b], (0.5,))[0] for a, b in zip(starts, ends, strict=True)])


def _by_address(meta: dict[str, Any], targets: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A testbed run's targets named by their addresses alone: each testbed target has a loopback
    address of its own (127.0.0.2, 127.0.0.3, ...), while its port is picked free at each start,
    so the same target has another port in every run. Elsewhere the port is part of the name."""
    t = meta.get("target")
    if not (isinstance(t, dict) and t.get("kind") == "testbed"):
        return targets
    named = {name.rsplit(":", 1)[0]: d for name, d in targets.items()}
    return named if len(named) == len(targets) else targets  # one address, two ports: keep both
