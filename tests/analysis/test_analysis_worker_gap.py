"""A lost Locust worker (run.json workers.gaps): its seconds are left out of the rate-based
figures, the timeline shows it and the verdict names it in its caveats."""

from __future__ import annotations

import json
from pathlib import Path

from analysis import correlate, dataset
from analysis.pipeline import analyze_run
from fixtures import synth
from probes.loadgen.meta import gap_reason


def _with_gap(run: Path, start_s: float, end_s: float) -> list[dict]:
    meta = json.loads((run / "run.json").read_text())
    t0 = float(meta["started_at"])
    gaps = [
        {
            "worker_id": "w1",
            "client_id": "c1",
            "from": t0 + start_s,
            "to": t0 + end_s,
            "reason": "worker gone",
        }
    ]
    meta.setdefault("workers", {"mode": "distributed", "count": 2})["gaps"] = gaps
    (run / "run.json").write_text(json.dumps(meta))
    return gaps


def _compute(run: Path):
    ds = dataset.open_run(run)
    try:
        return correlate.compute(ds)
    finally:
        ds.close()


def test_gap_seconds_leave_the_rate_based_figures(tmp_path):
    run = synth.write(tmp_path, "keepalive-race", run_id="ka")
    before, tl0 = _compute(run)
    assert before.share_5xx_low_load and before.worker_gap_seconds is None
    # A gap over the whole timeline: no second is left to judge a rate on.
    _with_gap(run, -5, tl0.seconds + 5)
    after, tl = _compute(run)
    assert after.worker_gap_seconds == tl.seconds == tl.gap_seconds().sum()
    assert after.share_5xx_low_load is None and after.offered_rps_p95 in (None, 0.0)
    assert after.concurrency_failure_r is None
    # The counts are not rates: every recorded request still counts.
    assert after.requests == before.requests and after.proxy_5xx == before.proxy_5xx


def test_a_gap_over_part_of_the_run_is_left_out_only_there(tmp_path):
    run = synth.write(tmp_path, "capacity", run_id="cap")
    gaps = _with_gap(run, 0, 20)
    fig, tl = _compute(run)
    mask = tl.gap_seconds()
    first = int(gaps[0]["from"]) - tl.t0
    assert mask[max(0, first) : int(gaps[0]["to"]) - tl.t0].all() and not mask[-10:].any()
    assert fig.worker_gap_seconds == int(mask.sum()) > 0
    n = tl.get("n")
    assert fig.offered_rps_p95 is not None and fig.offered_rps_p95 <= n[~mask].max()


def test_the_verdict_names_the_gap_in_its_caveats_and_the_report_shows_it(tmp_path):
    run = synth.write(tmp_path, "healthy", run_id="h")
    _with_gap(run, 10, 25)
    res = analyze_run(run)
    (caveat,) = res.verdict.caveats
    assert caveat.startswith("load incomplete: lost Locust worker w1 from ")
    summary = json.loads((run / "report" / "summary.json").read_text())
    assert summary["caveats"] == [caveat]
    html = (run / "report" / "report.html").read_text()
    assert "Caveats" in html and "lost Locust worker w1" in html


def test_gap_reason_names_each_lost_worker_and_its_span():
    gaps = [{"worker_id": "w0", "from": 106.25, "to": 116.0, "reason": "worker gone"}]
    assert gap_reason(gaps, 100.0, 2) == (
        "lost Locust worker w0 from 6.2 s to 16.0 s of the load (worker gone): "
        "1 of 2 load processes sent nothing then"
    )
    assert gap_reason([], 100.0, 2) is None


def test_the_timeline_hatches_the_gap_on_every_panel():
    import matplotlib.pyplot as plt

    from analysis.correlate import Timeline
    from analysis.reports.plots import _gaps

    tl = Timeline(t0=100, seconds=30, gaps=[(110.4, 118.0, "w1")])
    fig, axes = plt.subplots(2, 1)
    try:
        _gaps(list(axes), tl)
        for ax in axes:
            (span,) = ax.patches
            x0, x1 = span.get_x(), span.get_x() + span.get_width()
            assert (round(x0, 1), round(x1, 1)) == (10.4, 18.0)
        assert axes[0].get_legend_handles_labels()[1] == ["worker w1 lost: load incomplete"]
    finally:
        plt.close(fig)
