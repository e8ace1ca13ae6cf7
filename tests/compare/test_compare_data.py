"""`albprobe compare` reads each run with one scan into numpy: every figure it reads must be the
one DuckDB's own aggregates give (quantile_cont, median, counts per window and per second), to
the bit, on a run built to be awkward: ties, NULL latencies, every failure producer, a NULL
endpoint, an endpoint without one good answer, rows in several Parquet parts out of time order."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis import exact_quantiles
from analysis.compare import data
from core.rundir import SCHEMAS, RunDir
from fixtures.synth_compare import meta

T0 = 1_795_000_000.25


def _awkward_run(root, rng: np.random.Generator, n: int = 24_000):
    ts = T0 + rng.random(n) * 37.3
    endpoint = rng.choice(np.array(["a", "b", "c", "only-errors", None], dtype=object), n)
    kind = np.where(rng.random(n) < 0.15, "preflight", "actual").astype(object)
    source = rng.choice(
        np.array(["app", "proxy", "server", "network"], dtype=object), n, p=[0.85, 0.07, 0.03, 0.05]
    )
    status = np.where(
        source == "app",
        rng.choice([200, 201, 304, 404, 500], n, p=[0.7, 0.1, 0.1, 0.05, 0.05]),
        502,
    )
    status = np.where(source == "network", 0, np.where(source == "server", 503, status))
    status = np.where(endpoint == "only-errors", 500, status)
    # ties: latencies rounded to 0.5 ms, one block of equal values, some NULL
    lat = np.round(rng.lognormal(3.0, 0.8, n) * 2) / 2
    lat[rng.random(n) < 0.2] = 42.0
    lat_arr = pa.array(lat, pa.float64(), mask=rng.random(n) < 0.03)
    cols = {
        "ts": pa.array(ts),
        "kind": pa.array(kind, pa.string()),
        "endpoint": pa.array(endpoint, pa.string()),
        "status": pa.array(status.astype(np.int32)),
        "source": pa.array(source, pa.string()),
        "cors_ok": pa.array(rng.random(n) > 0.04),
        "latency_ms": lat_arr,
    }
    fields = SCHEMAS["requests"]
    tbl = pa.Table.from_arrays(
        [cols[f.name].cast(f.type) if f.name in cols else pa.nulls(n, f.type) for f in fields],
        schema=fields,
    )
    rd = RunDir.create(root, "awkward")
    m = meta("awkward", 38, {"a": 1.0, "b": 1.0, "c": 1.0})
    m["counts"]["requests"] = n
    rd.write_meta(m)
    d = rd.table_dir("requests")
    d.mkdir(exist_ok=True)
    order = np.argsort(ts)
    for k, part in enumerate(np.array_split(order, 3)[::-1]):  # parts out of time order
        pq.write_table(tbl.take(part), d / f"part-{k:05d}.parquet")
    return rd.path


def test_every_figure_is_duckdbs_own(tmp_path):
    path = _awkward_run(tmp_path, np.random.default_rng(5))
    rd = data.load(path)
    con = duckdb.connect()
    t0, t1 = con.execute(
        f"SELECT min(ts), max(ts) FROM read_parquet('{path}/requests/*.parquet')"
    ).fetchone()
    assert rd.window_s == data.window_seconds(t1 - t0)
    con.execute(
        f"""CREATE VIEW r AS SELECT *, coalesce(endpoint, '?') AS ep,
              CAST(floor((ts - {t0!r}) / {rd.window_s!r}) AS INTEGER) AS win
           FROM read_parquet('{path}/requests/*.parquet')"""
    )
    good = f"{data.LATENCY_ROWS} AND latency_ms IS NOT NULL"
    assert rd.endpoints == ["?", "a", "b", "c", "only-errors"]
    for scope in [data.ALL, *rd.endpoints]:
        where = "true" if scope == data.ALL else f"ep = '{scope}'"
        # counts of every producer, per window with requests, in time order
        cols = ", ".join(f"count(*) FILTER (WHERE {s})" for s in data.PRODUCERS.values())
        rows = con.execute(
            f"SELECT count(*), {cols} FROM r WHERE {where} GROUP BY win ORDER BY win"
        ).fetchall()
        c = rd.counts[scope]
        assert c.n.tolist() == [r[0] for r in rows]
        for i, p in enumerate(data.PRODUCERS, start=1):
            assert c.events[p].tolist() == [r[i] for r in rows], (scope, p)
        # quantiles and per-window medians of the good answers: the same doubles
        lat = rd.latency[scope]
        n, qs = con.execute(
            f"SELECT count(*), quantile_cont(latency_ms, [0.5, 0.95, 0.99]) FROM r "
            f"WHERE {where} AND {good}"
        ).fetchone()
        assert lat.n == n
        assert [lat.quantile(q) for q in data.QUANTILES] == (qs or [None] * 3)
        med = con.execute(
            f"SELECT median(latency_ms) FROM r WHERE {where} AND {good} GROUP BY win ORDER BY win"
        ).fetchall()
        assert lat.window_medians().tolist() == [m for (m,) in med], scope
        # the sample: every good answer with its window (fewer than SAMPLE_ROWS here)
        rows = con.execute(
            f"SELECT latency_ms, win FROM r WHERE {where} AND {good} ORDER BY 1, 2"
        ).fetchall()
        order = np.lexsort((lat.window, lat.ms))
        assert list(zip(lat.ms[order].tolist(), lat.window[order].tolist(), strict=True)) == rows
    assert rd.latency["only-errors"].n == 0 and rd.latency["only-errors"].quantiles == {}
    # the timeline: every second with requests
    tl = con.execute(
        f"""SELECT floor(ts - {t0!r}) AS t, count(*) AS requests,
              quantile_cont(latency_ms, 0.95) FILTER (WHERE {good}) AS p95_ms,
              count(*) FILTER (WHERE status >= 500 OR status = 0 OR NOT cors_ok) AS failures
           FROM r GROUP BY 1 ORDER BY 1"""
    ).fetchall()
    assert rd.timeline == [{"t": t, "requests": q, "p95_ms": p, "failures": f} for t, q, p, f in tl]


def test_the_sample_is_the_same_each_time_and_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "SAMPLE_ROWS", 2_000)
    path = _awkward_run(tmp_path, np.random.default_rng(9), n=60_000)
    a, b = data.load(path), data.load(path)
    for scope, lat in a.latency.items():
        assert np.array_equal(lat.ms, b.latency[scope].ms)
        assert np.array_equal(lat.window, b.latency[scope].window)
        if lat.n > 2_000:  # about SAMPLE_ROWS of them (a hash picks each row)
            assert 1_500 < len(lat.ms) < 2_500, (scope, len(lat.ms))


@pytest.mark.parametrize("seed", [1, 2])
def test_interpolation_is_duckdbs_to_the_bit(seed):
    rng = np.random.default_rng(seed)
    con = duckdb.connect()
    for _ in range(200):
        lo = float(rng.uniform(-50, 5000))
        hi = lo + float(rng.exponential(100))
        d = float(rng.random())
        want = con.execute(
            f"SELECT list_aggregate([CAST('{lo!r}' AS DOUBLE), CAST('{hi!r}' AS DOUBLE)], "
            f"'quantile_cont', CAST('{d!r}' AS DOUBLE))"
        ).fetchone()[0]
        assert exact_quantiles.interpolate_values(lo, hi, d) == want, (lo, hi, d)
