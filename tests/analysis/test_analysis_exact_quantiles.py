"""The run's exact quantiles from histograms + the values of a few buckets (exact_quantiles), and
the per-second quantiles read in time ranges: the same doubles as DuckDB's quantile_cont over
the whole run, on a small run with the bounded paths forced."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis import correlate, dataset
from analysis import exact_quantiles as eq
from core.rundir import SCHEMAS


def _run(tmp_path, n=20_000, seed=5):
    """A requests table with what the buckets must get right: several endpoints (one NULL),
    sources outside the target, NULL latencies and timestamps, ties, a block of equal values,
    zeros and coordinated-omission latencies."""
    rng = np.random.default_rng(seed)
    lat = np.round(rng.lognormal(np.log(20), 0.8, n), 2)
    lat[rng.random(n) < 0.45] = 12.5  # 45 % equal values: the median's bucket holds only them
    lat[rng.random(n) < 0.01] = 0.0
    lat_obj = lat.astype(object)
    lat_obj[rng.random(n) < 0.02] = None
    ts = 1_700_000_000 + np.sort(rng.random(n)) * 40
    ts_obj = ts.astype(object)
    ts_obj[rng.random(n) < 0.005] = None
    co = lat + rng.exponential(5, n)
    source = rng.choice(["app", "server", "proxy", "network"], n, p=[0.7, 0.1, 0.15, 0.05])
    endpoint = rng.choice(np.array(["a", "b", "c", None], dtype=object), n, p=[0.5, 0.3, 0.1, 0.1])
    cols = {
        "ts": ts_obj,
        "intended_ts": ts,
        "kind": np.full(n, "actual", dtype=object),
        "endpoint": endpoint,
        "status": np.where(source == "app", 200, 502),
        "source": source.astype(object),
        "cors_ok": np.ones(n, dtype=bool),
        "latency_ms": lat_obj,
        "co_latency_ms": co,
    }
    schema = SCHEMAS["requests"]
    arrays = [
        pa.array(list(cols[f.name]), type=f.type) if f.name in cols else pa.nulls(n, f.type)
        for f in schema
    ]
    (tmp_path / "run" / "requests").mkdir(parents=True)
    pq.write_table(pa.table(arrays, schema=schema), tmp_path / "run/requests/part-00000.parquet")
    return tmp_path / "run"


def _direct(ds):
    """The figures as quantile_cont over all the rows gives them."""
    one = ds.con.execute(
        f"""SELECT quantile_cont(latency_ms, [0.5, 0.9, 0.99, 0.999]),
                   quantile_cont(co_latency_ms, [0.5, 0.99]),
                   quantile_cont(latency_ms, [0.5, 0.99]) FILTER (WHERE {correlate._TARGET})
            FROM requests"""
    ).fetchall()[0]
    sec = ds.con.execute(
        """SELECT CAST(floor(ts) AS BIGINT), quantile_cont(latency_ms, [0.5, 0.99]),
                  quantile_cont(co_latency_ms, 0.99)
           FROM requests WHERE ts IS NOT NULL GROUP BY 1"""
    ).fetchall()
    return list(one), {t: (q[0], q[1], c) for t, q, c in sec}, correlate.mix_service_ms(ds)


def _ours(run):
    ds = dataset.open_run(run)
    try:
        p = correlate._request_passes(ds)
        tot = p.totals
        sec = {r["t"]: (r["p50"], r["p99"], r["co_p99"]) for r in p.seconds}
        return [tot["lat"], tot["co_lat"], tot["tlat"]], sec, p.mix_service_ms, _direct(ds)
    finally:
        ds.close()


@pytest.mark.parametrize(
    "direct, together, cap",
    [
        (10**9, correlate.QUANTILE_ROWS_TOGETHER, eq.CANDIDATES_MAX),  # small runs: as before
        (0, correlate.QUANTILE_ROWS_TOGETHER, eq.CANDIDATES_MAX),  # one scan, buckets collected
        (0, 3_000, 50),  # per-second scans in time ranges; full buckets split (refine)
        (0, 1, 1),  # one second per scan; every bucket split down to single values
    ],
)
def test_bounded_quantiles_are_quantile_cont_to_the_bit(
    tmp_path, monkeypatch, direct, together, cap
):
    run = _run(tmp_path)
    monkeypatch.setattr(correlate, "QUANTILE_DIRECT_ROWS", direct)
    monkeypatch.setattr(correlate, "QUANTILE_ROWS_TOGETHER", together)
    monkeypatch.setattr(eq, "CANDIDATES_MAX", cap)
    calls = {"refine": 0, "scans": 0}
    refine, batches = eq.refine, correlate._second_batches

    def counted_refine(*a):
        calls["refine"] += 1
        return refine(*a)

    def counted_batches(ds):
        out = batches(ds)
        calls["scans"] += len(out)
        return out

    monkeypatch.setattr(eq, "refine", counted_refine)
    monkeypatch.setattr(correlate, "_second_batches", counted_batches)
    run_q, sec, mix, (d_run, d_sec, d_mix) = _ours(run)
    assert calls["refine"] >= (1 if cap < 1000 else 0)
    assert calls["scans"] == (1 if together > 20_000 else 41 if together == 1 else 8)
    assert run_q == d_run  # exact doubles, not approximately
    assert d_run[0][0] == 12.5 and None not in d_run[1]
    assert {t: v for t, v in sec.items()} == d_sec
    assert len(sec) == 40
    assert mix == pytest.approx(d_mix, rel=1e-12)  # a sum over endpoints: order may differ


def test_key_is_monotone_and_matches_duckdb():
    con = dataset.connect()
    rng = np.random.default_rng(3)
    v = np.concatenate(
        [
            rng.lognormal(2, 3, 50_000),
            -rng.lognormal(0, 2, 1_000),
            [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, 1.7e308, 1.0, np.nextafter(1.0, 2)],
        ]
    )
    con.register("v", {"x": v})
    got = np.array(
        [r[0] for r in con.execute(f"SELECT {eq.key_sql('x')} FROM v").fetchall()],
        dtype=np.float64,
    )
    ours = eq.key_np(v)
    same = (got == ours) | (np.isnan(got) & np.isnan(ours))
    assert same.all()
    fin = np.isfinite(v)
    order = np.argsort(v[fin], kind="stable")
    assert (np.diff(ours[fin][order]) >= 0).all()
    for b in np.unique(ours[fin])[::97]:
        lo, hi = eq._bucket_range(float(b))
        inside = v[fin][ours[fin] == b]
        assert lo <= inside.min() and inside.max() <= hi
