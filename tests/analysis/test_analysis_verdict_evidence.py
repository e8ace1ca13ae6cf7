"""The verdict weighs every source, reads typed figures, keeps its weights in one documented
table, and words itself for its input (a load run or ALB logs alone)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from analysis import correlate, dataset, pipeline, verdict
from analysis.figures import Figures
from analysis.reports import thresholds

DATA = Path(__file__).parent / "data" / "testbed"
DOC = Path(__file__).resolve().parents[2] / "docs" / "analysis.md"


def test_blocked_port_from_the_start_is_judged_on_health_and_proxy_log():
    # Recorded: `albprobe run --shape users --users 2 --duration 20s --fault blocked-port@0s`.
    # Every request waits out the 10 s connect timeout: 4 requests, all 504, health L4TOUT
    # throughout. It used to end in "Insufficient evidence: only 4 requests recorded".
    v = pipeline.analyze_run(DATA / "bp0", write=False).verdict
    assert v.figures.requests < verdict.MIN_REQUESTS
    assert v.at_fault == "proxy", v.headline
    assert v.top is not None and v.top.id == "connectivity"
    assert {"health", "haproxy"} <= set(v.top.sources)
    # the strength the evidence supports: health and proxy log agree, the requests add little
    assert 0.6 <= v.top.strength < 0.95
    assert "target health samples" in v.headline and "proxy log" in v.headline
    assert "run longer" in v.headline and "--users" in v.headline
    assert any("only 4 recorded" in m for m in v.missing_evidence)


def test_few_requests_without_corroboration_stay_insufficient_with_advice():
    fig = Figures(
        present={"requests": True, "run_json": True},
        requests=6,
        proxy_5xx=6,
        proxy_504=6,
        failures=6,
        app_responses=0,
        duration_s=20.0,
    )
    v = verdict.decide(fig, context="run")
    assert v.at_fault == "insufficient-evidence"
    assert "only 6 requests" in v.headline and "run longer" in v.headline


def test_figures_are_typed_and_a_misspelt_figure_is_an_error():
    fig = Figures(present={"requests": True}, requests=100, p99_ms=12.0)
    with pytest.raises(KeyError, match="p99_mss"):
        Figures.from_dict({"present": {}, "p99_mss": 1.0})
    with pytest.raises(KeyError, match="present"):
        Figures.from_dict({"requests": 3})
    with pytest.raises(KeyError):
        fig["p99_mss"]
    with pytest.raises(AttributeError):
        fig.p99_mss  # noqa: B018
    # public names survive the round trip (summary.json, --fail-on)
    fig.rate_5xx = 0.02
    d = fig.to_dict()
    assert d["5xx_rate"] == 0.02 and "rate_5xx" not in d
    assert Figures.from_dict(d) == fig
    assert thresholds.parse("5xx_rate>1%").breached(fig) == (True, 0.02)
    assert thresholds.parse("p99<800").breached(fig) == (True, 12.0)
    # every --fail-on metric names a real figure
    names = {f.name for f in dataclasses.fields(Figures)} | {"5xx_rate"}
    assert set(thresholds.METRICS.values()) <= names


def test_every_figure_correlate_computes_is_a_field():
    ds = dataset.open_run(DATA / "hang")
    try:
        figs, _tl = correlate.compute(ds)
    finally:
        ds.close()
    assert isinstance(figs, Figures) and figs.requests > 0 and figs.haproxy_classes


def _doc_weights() -> dict[str, dict[str, float]]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("### Signal weights", 1)[1].split("\n## ", 1)[0]
    out: dict[str, dict[str, float]] = {}
    for cause, signal, weight in re.findall(
        r"^\| `([a-z-]+)` \| `([a-z0-9.-]+)` \| ([0-9.]+) \|", section, flags=re.M
    ):
        out.setdefault(cause, {})[signal] = float(weight)
    return out


def test_weights_table_in_the_docs_matches_the_code():
    assert _doc_weights() == verdict.WEIGHTS
    assert set(verdict.WEIGHTS) == set(verdict.CAUSE_IDS)
    for signals in verdict.WEIGHTS.values():
        for s, w in signals.items():
            assert s.split(".")[0] in verdict.SOURCE_NAMES and 0 < w <= 1


def test_alb_log_context_words_the_verdict_for_a_log_window(mode_runs):
    figs = pipeline.analyze_run(mode_runs["capacity"], write=False).verdict.figures
    run = verdict.decide(figs, context="run")
    # the same failures as an ALB log window would show them (ALB-generated 5xx)
    as_alb = dataclasses.replace(figs, alb_elb_5xx=figs.proxy_5xx, alb_entries=figs.requests)
    alb = verdict.decide(as_alb, context="alb-logs")
    run_text = " ".join(e for c in run.causes for e in c.evidence)
    alb_text = " ".join(e for c in alb.causes for e in c.evidence)
    assert "into the run" in run_text
    assert "into the log window" in alb_text and "into the run" not in alb_text


def test_alb_logs_never_suggest_a_longer_run(tmp_path):
    from fixtures import synth

    synth.write_alb_logs(tmp_path / "logs", 30, files=1)  # fewer entries than a run would need
    res = pipeline.analyze_alb_logs(str(tmp_path / "logs"), write=False)
    text = res.verdict.headline + " ".join(res.verdict.missing_evidence)
    assert res.verdict.at_fault != "insufficient-evidence"
    assert "--users" not in text and "run longer" not in text and "into the run" not in text


def test_keepalive_switch_restart_does_not_make_target_down_the_cause():
    # Recorded by the verdict sweep (seed 1000): `--fault keepalive-race@0s` restarts gunicorn as
    # the load starts (4 refused connects), then 36 closed-connection 502s spread over the run.
    # The restart used to rank target-down first (0.44) on "5xx while the target was stopped".
    v = pipeline.analyze_run(DATA / "ka-switch", write=False).verdict
    assert v.at_fault == "proxy" and v.top is not None
    assert v.top.id == "keepalive-race", [(c.id, c.strength) for c in v.causes]
    assert all(c.id != "target-down" for c in v.causes)


def test_health_timeouts_in_a_cold_start_before_the_load_are_not_capacity():
    # Recorded by the verdict sweep (seed 1022, no fault): the health checks timed out (L7TOUT)
    # while the 4 sync workers served their first, cold requests, before the load began; the
    # load itself ran clean. It used to read as a latent capacity problem.
    v = pipeline.analyze_run(DATA / "cold-start", write=False).verdict
    reasons = {r["reason"]: r for r in v.figures.health_reasons}
    assert reasons["L7TOUT"]["samples"] >= 3 and reasons["L7TOUT"]["at_capacity"] == 0
    assert v.at_fault == "none" and not v.causes, v.headline


def test_hung_requests_that_never_completed_are_judged_on_health():
    # Recorded by the verdict sweep (seed 1003, second sweep): `--fault hang@5s-27s` on 3x3 gthread
    # slots. Every call hung from 7 s on and none completed before the run ended, so only 31
    # requests were recorded and none failed; health read L7TOUT with every slot busy for 29 s.
    # It used to end in "Insufficient evidence: only 31 requests recorded".
    v = pipeline.analyze_run(DATA / "hang-stalled", write=False).verdict
    assert v.figures.requests < verdict.MIN_REQUESTS and not v.figures.failures
    assert v.at_fault == "proxy" and v.top is not None and v.top.id == "capacity", v.headline
    assert "health" in v.top.sources and "run longer" in v.headline


def test_capacity_is_not_a_cause_when_no_failure_is_an_overload_failure():
    # Recorded by the verdict sweep (seed 1007, second sweep): the keep-alive switch restarts
    # gunicorn under load (10 refused connects) and the race closes 8 connections; 2 sync slots
    # were briefly full after the restart. Capacity used to tie with target-down at 0.77.
    v = pipeline.analyze_run(DATA / "ka-restart", write=False).verdict
    strength = {c.id: c.strength for c in v.causes}
    assert strength.get("capacity", 0) < 0.35 < strength["keepalive-race"]
    assert v.at_fault == "proxy"
