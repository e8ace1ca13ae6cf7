"""Verdicts on run directories recorded from the real testbed (HAProxy -> gunicorn -> Django).

Recorded with `albprobe run --target testbed` (main at 83b6fbc): report/, locust/ and progress.json
removed. They carry the real signals the synthetic runs imitate: the testbed's 503-as-502 with
SC--/sC--, the fail-open backup server, HAProxy `[NOTICE]` lines, gunicorn workers logging in
another zone, the keep-alive fault switching gunicorn to gthread behind run.json's back.
"""

from pathlib import Path

import pytest

from analysis import pipeline

DATA = Path(__file__).parent / "data" / "testbed"
EXPECTED = {
    "ka": ("proxy", "keepalive-race"),  # --fault keepalive-race, idle-gap shape
    "hang": ("proxy", "capacity"),  # --fault hang@10s-30s: WORKER TIMEOUT, gunicorn 500s, L7TOUT
    "bp": ("proxy", "connectivity"),  # --fault blocked-port@10s-20s: sC--, L4TOUT
    "hh": ("proxy", "health-check-config"),  # --fault health-host: L7STS 400, fail-open
    # --users 2 --duration 20s --fault blocked-port@0s: 4 requests, each a 10 s connect timeout
    "bp0": ("proxy", "connectivity"),
    # --listener http-redirect --users 3 --duration 8s: the port-80 listener's 301s (LR--)
    "redirect": ("proxy", "http-redirect"),
}


@pytest.mark.parametrize("run", sorted(EXPECTED))
def test_recorded_testbed_runs(run):
    v = pipeline.analyze_run(DATA / run, write=False).verdict
    at_fault, top = EXPECTED[run]
    assert v.at_fault == at_fault, v.headline
    assert v.top.id == top, [(c.id, c.strength) for c in v.causes]
    assert v.top.strength >= 0.6
    if len(v.causes) > 1:
        assert v.causes[1].strength <= v.top.strength - 0.3
    assert not v.missing_evidence or all("conn_reused" not in m for m in v.missing_evidence)


def test_recorded_keepalive_run_reads_the_real_worker_class():
    f = pipeline.analyze_run(DATA / "ka", write=False).verdict.figures
    assert f["capacity"]["worker_class"] == "sync" and f["gunicorn_worker_class"] == "gthread"
    assert f["haproxy_classes"]["server-closed"] == 21
    assert f["parse"]["haproxy"]["other"] >= 3 and f["parse"]["haproxy"]["malformed"] == 0
