"""The tuning report from a TuneResult: the capacity curve, the side-by-side table, the USL text
(or the plain statement that the data does not support a fit), every figure in JSON."""

from __future__ import annotations

import json

from analysis.capacity import Memory, TuneResult, parse_gates, parse_slo, recommend, summarise_pass
from analysis.reports import thresholds as th
from analysis.reports.capacity import capacity_png, render_html
from tests.analysis.test_capacity import step

SLO = parse_slo(["p99<500ms", "5xx_rate<0.01"])


def result() -> TuneResult:
    before = summarise_pass(
        "before",
        {"worker_class": "sync", "workers": 2, "threads": 1, "slots": 2},
        [
            step(8, 8.0, 130),
            step(12.8, 12.5, 186),
            step(20.48, 18.6, 605),
            step(16.19, 15.7, 172),
            step(18.21, 17.8, 232),
        ],
        SLO,
    )
    rec = recommend(
        target_rps=30,
        service_ms=108,
        cpu_share=0.034,
        cores=2,
        memory=Memory(per_worker_mb=26, source="testbed"),
    )
    after = summarise_pass(
        "after",
        {"worker_class": "gthread", "workers": 2, "threads": 3, "slots": 6},
        [step(r, r * 0.98, 200) for r in (8, 12.8, 16.19, 18.21, 20.48, 30)],
        SLO,
    )
    return TuneResult(
        target="testbed",
        slo=tuple(t.text for t in SLO),
        before=before,
        recommendation=rec,
        after=after,
        statements=(before.knee.statement, "proof: ..."),
    )


def test_report_shows_before_and_after_side_by_side_and_the_arithmetic():
    r = result()
    png = capacity_png(r)
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
    page = render_html(r, png)
    assert "knee 17.8 req/s (offered 18.21)" in page
    assert "p99 at 20.48 req/s (where before broke)</td><td>605 ms</td><td>200 ms" in page
    assert "5xx rate at 30 req/s (the target)</td><td>-</td><td>0.00%" in page
    assert "--workers 2 --worker-class gthread --threads 3 --keep-alive 65" in page
    assert "ceil(3.24 x 1.3) = 5" in page
    text = page.split("base64,")[0] + page.split("'>", 3)[-1]  # the page without the image
    assert " nan" not in text.lower() and "None" not in text
    # the after pass never saturated: a plain statement, no numbers
    assert (
        "USL fit (after): <b>not supported by the data</b>: throughput rose in proportion" in page
    )


def test_tune_json_carries_every_figure_and_the_gates_read_it():
    r = result()
    doc = json.loads(json.dumps(r.to_json()))
    assert doc["figures"]["knee_rps"] == 17.8
    assert doc["proof"] == {"target_rps": 30, "holds": True}
    assert [s["slo"]["holds"] for s in doc["before"]["steps"]] == [True, True, False, True, True]
    assert doc["recommendation"]["memory_total_mb"] == 52
    gates = parse_gates(["knee_rps<200", "after_p99>400", "usl_kappa>0.5"])
    rows = th.evaluate(gates, r.gate_figures())
    assert [row["breached"] for row in rows] == [True, False, False]
