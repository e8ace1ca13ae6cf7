"""Golden verdicts: every mode of the failure-mode matrix (docs/architecture.md), from synthetic run directories."""

import json
import re

import pytest

from analysis import pipeline, verdict
from fixtures import synth

GOLDEN = {
    "healthy": ("none", None),
    "target-down": ("proxy", "target-down"),
    "capacity": ("proxy", "capacity"),
    "keepalive-race": ("proxy", "keepalive-race"),
    "health-check-host": ("proxy", "health-check-config"),
    "blocked-port": ("proxy", "connectivity"),
    "cors-misconfig": ("cors-setup", "cors-setup"),
    "ambiguous": ("insufficient-evidence", None),
}
PROXY_CAUSES = {"target-down", "capacity", "keepalive-race", "health-check-config", "connectivity"}


@pytest.fixture(scope="module")
def results(mode_runs):
    return {m: pipeline.analyze_run(p, write=False) for m, p in mode_runs.items()}


@pytest.mark.parametrize("mode", list(GOLDEN))
def test_golden_verdict(results, mode):
    v = results[mode].verdict
    at_fault, top = GOLDEN[mode]
    assert v.at_fault == at_fault, v.headline
    if top is None:
        assert not [c for c in v.causes if c.strength >= 0.5]
    else:
        assert v.top is not None and v.top.id == top
        assert v.top.strength >= 0.6
        # the runner-up, if any, is clearly weaker: the modes are distinguishable
        if len(v.causes) > 1:
            assert v.causes[1].strength <= v.top.strength - 0.25, [
                (c.id, c.strength) for c in v.causes
            ]
        # every evidence sentence carries a figure; the fix is concrete
        assert all(re.search(r"\d", e) for e in v.top.evidence)
        assert len(v.top.fix) > 30
    assert re.search(r"\d", v.headline)


def test_cors_control_never_blames_the_proxy(results):
    v = results["cors-misconfig"].verdict
    assert v.at_fault == "cors-setup"
    assert not [c for c in v.causes if c.id in PROXY_CAUSES]
    assert "CORS_ALLOWED_ORIGINS" in v.causes[0].fix and "https://hakwonplus.com" in v.causes[0].fix
    assert {"source": "app", "cors": "fail", "count": v.figures["requests"]} in v.cross_table


def test_proxy_modes_have_proxy_fail_and_app_pass_in_cross_table(results):
    for mode in ("target-down", "capacity", "keepalive-race", "blocked-port"):
        rows = {(r["source"], r["cors"]): r["count"] for r in results[mode].verdict.cross_table}
        assert rows.get(("proxy", "fail"), 0) > 0
        assert ("app", "fail") not in rows


def test_specific_fixes(results):
    ka = results["keepalive-race"].verdict.top
    assert "--keep-alive 65" in ka.fix  # above the 60 s idle timeout from run.json
    conn = results["blocked-port"].verdict.top
    assert (
        "aws ec2 authorize-security-group-ingress --group-id <api-sg> --protocol tcp --port 8000 --source-group <alb-sg>"
        in conn.fix
    )
    cap = results["capacity"].verdict
    assert re.search(r"gunicorn --workers \d+ --threads 4", cap.top.fix)
    f = cap.figures
    # the capacity figures the brief asks for
    assert f["slots"] == 8 and f["utilisation"] > 1
    assert f["failure_onset_rps"] > 0 and f["failure_onset_concurrency"] > 0
    assert f["recommended_workers"] > 2
    assert f["peak_littles_concurrency"] > f["capacity_total"]
    assert any("began" in e for e in cap.top.evidence)
    hc = results["health-check-host"].verdict.top
    assert "ALLOWED_HOSTS" in hc.fix


def test_correlation_figures(results):
    td = results["target-down"].verdict.figures
    assert td["failure_rate_unhealthy"] > 0.5 > td["failure_rate_healthy"]
    assert td["health_failure_r"] > 0.8 and abs(td["health_failure_lag_s"]) <= 2
    ka = results["keepalive-race"].verdict.figures
    assert ka["share_5xx_low_load"] == 1.0 and ka["share_5xx_reused"] == 1.0
    assert ka["share_5xx_near_worker_event"] == 0.0 and ka["proxy_5xx_spread"] > 0.8
    cap = results["capacity"].verdict.figures
    assert cap["share_5xx_near_worker_event"] > 0.5


def test_insufficient_says_what_is_missing(results):
    v = results["ambiguous"].verdict
    text = " ".join(v.missing_evidence)
    for what in ("health", "proxy logs", "gunicorn", "capacity"):
        assert what in text
    assert "Insufficient evidence" in v.headline


def test_too_few_requests_is_insufficient(tmp_path):
    run = synth.write(tmp_path, "target-down", seconds=2, rps=10)
    v = pipeline.analyze_run(run, write=False).verdict
    assert v.at_fault == "insufficient-evidence" and "only 20 requests" in v.headline


def test_health_check_without_fail_open_gives_502s(tmp_path):
    run = synth.write(tmp_path, "health-check-host", fail_open=False)
    v = pipeline.analyze_run(run, write=False).verdict
    assert v.at_fault == "proxy" and v.top.id == "health-check-config"
    assert v.figures["proxy_502"] > 1000


@pytest.mark.parametrize(
    "mode,include,expected_top,missing_word",
    [
        ("target-down", {"requests", "run_json", "haproxy_log"}, "target-down", "health"),
        ("target-down", {"requests", "run_json", "health"}, "target-down", "proxy logs"),
        ("capacity", {"requests", "run_json", "gunicorn_log"}, "capacity", "health"),
        ("capacity", {"requests", "run_json"}, "capacity", "gunicorn"),
        ("keepalive-race", {"requests", "run_json", "haproxy_log"}, "keepalive-race", "health"),
        (
            "blocked-port",
            {"requests", "run_json", "haproxy_log", "gunicorn_log"},
            "connectivity",
            "health",
        ),
        ("blocked-port", {"requests", "run_json", "health"}, "connectivity", "proxy logs"),
        (
            "health-check-host",
            {"requests", "run_json", "health"},
            "health-check-config",
            "proxy logs",
        ),
    ],
)
def test_subsets_of_inputs(tmp_path, mode, include, expected_top, missing_word):
    run = synth.write(tmp_path, mode, include=include)
    v = pipeline.analyze_run(run, write=False).verdict
    assert v.at_fault == "proxy", v.headline
    assert v.top.id == expected_top, [(c.id, c.strength) for c in v.causes]
    assert any(missing_word in m for m in v.missing_evidence)


def test_keepalive_without_capacity_model_is_weaker_and_says_so(tmp_path):
    run = synth.write(tmp_path, "keepalive-race", include={"requests", "haproxy_log"})
    v = pipeline.analyze_run(run, write=False).verdict
    full = pipeline.analyze_run(synth.write(tmp_path / "b", "keepalive-race"), write=False).verdict
    assert v.top.id == "keepalive-race" and v.top.strength < full.top.strength
    assert any("capacity model" in m or "run.json" in m for m in v.missing_evidence)


def test_summary_json_contract(mode_runs, tmp_path):
    res = pipeline.analyze_run(mode_runs["target-down"], out=tmp_path / "rep")
    data = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert set(data) >= {
        "at_fault",
        "headline",
        "causes",
        "cross_table",
        "security_findings",
        "missing_evidence",
        "figures",
    }
    assert data["at_fault"] in verdict.AT_FAULT
    for c in data["causes"]:
        assert c["id"] in verdict.CAUSE_IDS and 0 <= c["strength"] <= 1
        assert set(c) == {"id", "strength", "evidence", "fix"}
    assert all(set(r) == {"source", "cors", "count"} for r in data["cross_table"])
    assert (tmp_path / "rep" / "report.html").stat().st_size > 10_000
    assert res.outputs[0].name == "summary.json"


def test_decide_is_pure_on_figures():
    # the verdict works from figures alone (no data): a CORS failure among app responses
    fig = {
        "present": {"requests": True, "run_json": True},
        "requests": 1000,
        "app_responses": 1000,
        "app_cors_fail": 1000,
        "app_cors_fail_rate": 1.0,
        "origin": "https://x.example",
        "app_cors_steps": [{"step": "allow-credentials", "message": "m", "count": 1000}],
    }
    v = verdict.decide(fig)
    assert v.at_fault == "cors-setup" and "CORS_ALLOW_CREDENTIALS" in v.causes[0].fix
    fig2 = {
        "present": {"requests": True},
        "requests": 1000,
        "errors": 10,
        "unattributed_errors": 10,
    }
    assert verdict.decide(fig2).at_fault == "insufficient-evidence"


def test_a_disallowed_origin_let_in_blames_the_cors_setup(tmp_path):
    """docs/architecture.md, verdict logic: the CORS setup is at fault when a disallowed origin is let in, even when no
    request failed (the run's CORS scan puts its findings in run.json)."""
    run = synth.write(tmp_path, "healthy")
    meta = json.loads((run / "run.json").read_text())
    meta["security_findings"] = [
        {
            "check": "origin-reflected",
            "severity": "critical",
            "url": "http://x/api",
            "origin_sent": "https://evil.example",
            "acao": "https://evil.example",
            "acac": "true",
            "detail": "arbitrary origin reflected with credentials",
            "fix": "Use an explicit CORS_ALLOWED_ORIGINS list",
        },
        {
            "check": "vary-origin-missing",
            "severity": "low",
            "url": "http://x/api",
            "origin_sent": "https://hakwonplus.com",
            "acao": "https://hakwonplus.com",
            "acac": "true",
            "detail": "no Vary: Origin",
            "fix": "add Vary: Origin",
        },
    ]
    (run / "run.json").write_text(json.dumps(meta))
    v = pipeline.analyze_run(run, write=False).verdict
    assert v.at_fault == "cors-setup" and [c.id for c in v.causes] == ["cors-setup"]
    assert "origin-reflected" in v.causes[0].evidence[0] and "explicit" in v.causes[0].fix
    assert len(v.security_findings) == 2
    # a low-severity finding alone does not turn a healthy run into a CORS fault
    meta["security_findings"] = meta["security_findings"][1:]
    (run / "run.json").write_text(json.dumps(meta))
    assert pipeline.analyze_run(run, write=False).verdict.at_fault == "none"


def test_app_4xx_are_named_in_a_run_without_failures(tmp_path):
    """An endpoint the app refuses (415 for a body it does not take) is neither proxy nor CORS,
    but a run made of them must not read as plain "no failures"."""
    import dataclasses

    fig = pipeline.analyze_run(synth.write(tmp_path, "healthy"), write=False).verdict.figures
    assert "4xx" not in verdict.decide(fig).headline
    refused = dataclasses.replace(fig, app_ok=0, app_5xx=0)
    v = verdict.decide(refused)
    assert (
        v.at_fault == "none" and f"{refused.app_responses:,} app responses were 4xx" in v.headline
    )
