"""Partial, damaged and old run directories: analysed, never a traceback."""

import json

from analysis import pipeline
from analysis.reports import thresholds
from fixtures import synth


def test_corrupt_parquet_part_is_skipped_and_reported(tmp_path):
    run = synth.write(tmp_path, "target-down")
    (run / "requests" / "part-00099.parquet").write_bytes(b"PAR1 not really parquet")
    v = pipeline.analyze_run(run, write=False).verdict
    assert v.at_fault == "proxy" and v.top.id == "target-down"
    assert any("unreadable Parquet part" in n for n in v.figures["notes"])


def test_missing_run_json_still_analyses(tmp_path):
    run = synth.write(
        tmp_path, "target-down", include={"requests", "health", "haproxy_log", "events"}
    )
    v = pipeline.analyze_run(run, write=False).verdict
    assert v.at_fault == "proxy" and v.top.id == "target-down"
    assert any("run.json" in m for m in v.missing_evidence)


def test_proxy_log_only_run(tmp_path):
    # no requests table at all (e.g. the recorder crashed): the HAProxy log alone is analysed
    run = synth.write(tmp_path, "blocked-port", include={"haproxy_log", "run_json"})
    res = pipeline.analyze_run(run, out=tmp_path / "o")
    assert res.verdict.figures["haproxy_classes"]["connect-timeout"] == 2400
    assert res.verdict.at_fault in ("insufficient-evidence", "proxy")
    assert any("requests" in m for m in res.verdict.missing_evidence)


def test_older_parts_with_missing_columns(tmp_path):
    import pyarrow.parquet as pq

    run = synth.write(tmp_path, "healthy")
    part = next((run / "requests").glob("*.parquet"))
    t = pq.read_table(part).drop_columns(["conn_reused", "co_latency_ms", "intended_ts"])
    pq.write_table(t, part)
    v = pipeline.analyze_run(run, write=False).verdict
    assert v.at_fault == "none" and v.figures["share_reused"] is None


def test_gunicorn_events_not_double_counted(tmp_path):
    # the recorder copied gunicorn events into events/ and the raw log is there too
    from core.rundir import RunDir, TableWriter

    run = synth.write(
        tmp_path, "capacity", include={"requests", "run_json", "gunicorn_log", "health"}
    )
    log = (run / "logs" / "gunicorn.log").read_text().splitlines()
    from analysis.parsers import gunicorn

    evs = [gunicorn.parse_line(line) for line in log]
    evs = [e for e in evs if e and e is not True]
    w = TableWriter(RunDir(run), "events", flush_rows=10**6, flush_seconds=10**6)
    w.extend(
        {"ts": e.ts + 0.4, "source": "gunicorn", "kind": e.kind, "detail": e.detail, "pid": e.pid}
        for e in evs
    )
    w.close()
    v = pipeline.analyze_run(run, write=False).verdict
    assert v.figures["events"]["worker_timeout"] == sum(
        1 for e in evs if e.kind == "worker_timeout"
    )


def test_thresholds_parse_units():
    t = thresholds.parse("5xx_rate>1%")
    assert t.value == 0.01 and t.breached({"5xx_rate": 0.02}) == (True, 0.02)
    assert thresholds.parse("p99>=2s").value == 2000
    assert thresholds.parse("p99<800").breached({}) == (False, None)  # unmeasured is not a breach


def test_summary_json_is_strict_json(tmp_path):
    run = synth.write(tmp_path, "ambiguous")
    pipeline.analyze_run(run, out=tmp_path / "o")
    text = (tmp_path / "o" / "summary.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    json.loads(text)


def test_coordinated_omission_and_cloudwatch(tmp_path):
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    run = synth.write(tmp_path, "target-down")
    part = next((run / "requests").glob("*.parquet"))
    t = pq.read_table(part)
    co = pc.add(t.column("latency_ms"), 250.0)
    t = t.set_column(t.schema.get_field_index("co_latency_ms"), "co_latency_ms", co)
    pq.write_table(t, part)
    res = pipeline.analyze_run(run, out=tmp_path / "o", fail_on=["co_p99>100"])
    f = res.verdict.figures
    assert f["co_measured"] and f["co_p99_ms"] > f["p99_ms"]
    assert res.exit_code == 1
    cw = f["cloudwatch"]["HTTPCode_ELB_502_Count.Sum"]
    assert cw["sum"] == f["proxy_502"]
    assert res.timeline.cloudwatch["HTTPCode_ELB_502_Count.Sum"]


def test_lagged_correlation_on_a_series_shorter_than_the_lag():
    import numpy as np

    from analysis.correlate import lagged_correlation

    assert lagged_correlation(np.array([1.0, 0.0]), np.array([0.0, 1.0])) is None
    x = np.random.default_rng(7).random(12)
    y = np.concatenate([[0.5, 0.5], x[:-2]])  # y follows x by 2 s
    best = lagged_correlation(x, y, max_lag=10)
    assert best is not None and best[0] == 2 and best[1] > 0.99


def test_quantiles_split_into_one_scan_per_series_give_the_same_figures(tmp_path, monkeypatch):
    """A run too large for its exact-quantile states in one scan gets one scan per series: the
    figures and the per-second series are the same as from the shared scan."""
    import numpy as np

    from analysis import correlate, dataset

    run = synth.write(tmp_path, "capacity")

    def figures_and_series():
        ds = dataset.open_run(run)
        try:
            figs, tl = correlate.compute(ds)
        finally:
            ds.close()
        return figs.to_dict(), tl.series

    together, series = figures_and_series()
    monkeypatch.setattr(correlate, "QUANTILE_ROWS_TOGETHER", 0)
    split, split_series = figures_and_series()
    assert together["requests"] > 0 and together["p99_ms"] is not None
    # The same figures, to the last few bits: DuckDB's parallel sums add in the order its
    # threads finish, so a sum of latencies can differ in its 16th digit from run to run.
    assert _same(split, together), (split, together)
    assert set(split_series) == set(series) >= {"p50", "p99", "co_p99"}
    for k, v in series.items():
        np.testing.assert_allclose(split_series[k], v, rtol=1e-12, atol=0, err_msg=k)


def _same(a, b) -> bool:
    """Equal, floats within a relative 1e-12 (the order of a parallel sum)."""
    import math

    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0) or (math.isnan(a) and math.isnan(b))
    return a == b
