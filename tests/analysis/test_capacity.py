"""The pure part of capacity tuning: SLO grammar, knee detection, step planner, USL fit, recommendation."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.capacity import (
    Memory,
    StepFigures,
    find_knee,
    fit_usl,
    next_rate,
    parse_slo,
    recommend,
    usl,
)
from core.errors import AlbprobeError


def step(rate: float, x: float, p99: float, *, n5xx: int = 0, status: str = "complete"):
    n = max(int(x * 10), 1)
    return StepFigures(
        offered_rps=rate,
        run_id=f"s{rate:g}",
        status=status,
        requests=n,
        ok=n - n5xx,
        n5xx=n5xx,
        errors=n5xx,
        scheduled=int(rate * 10),
        throughput_rps=x,
        mean_ms=p99 / 2,
        p50_ms=p99 / 2,
        p99_ms=p99,
        concurrency=x * p99 / 2000,
    )


def test_slo_grammar_is_the_fail_on_grammar_with_units():
    slo = parse_slo(["p99<800ms", "5xx_rate<1%", "p50<=0.2s"])
    assert [(t.metric, t.op, t.value) for t in slo] == [
        ("p99", "<", 800.0),
        ("5xx_rate", "<", 0.01),
        ("p50", "<=", 200.0),
    ]
    assert [t.text for t in parse_slo([])] == ["p99<1s", "5xx_rate<0.01"]  # the default SLO


@pytest.mark.parametrize("bad", ["p99 less than 800", "latency<5", "p99<<3", "p99<1.2.3"])
def test_unreadable_slo_is_one_line_naming_the_flag(bad):
    with pytest.raises(AlbprobeError) as err:
        parse_slo([bad])
    line = err.value.one_line()
    assert "--slo" in line and bad in line and "\n" not in line


def test_knee_is_the_highest_sustained_throughput_where_the_slo_holds():
    slo = parse_slo(["p99<500ms", "5xx_rate<0.01"])
    steps = [
        step(10, 10, 110),
        step(15, 15, 120),
        step(22.5, 19.6, 2400),  # broke: latency
        step(18.4, 18.3, 180),
        step(20.3, 19.9, 650),  # broke: latency, between the two
    ]
    knee = find_knee(steps, slo)
    assert knee.step is steps[3] and knee.rps == pytest.approx(18.3)
    assert knee.broke is steps[4] and knee.bounded
    assert "p99<500ms: measured 650 ms" in knee.statement
    assert [c.holds for c in knee.checks] == [True, True, False, True, False]


def test_a_step_that_did_not_sustain_the_offered_rate_does_not_hold():
    knee = find_knee([step(10, 10, 100), step(40, 20, 150)], parse_slo(["p99<1s"]))
    assert knee.rps == 10 and "not sustained" in knee.statement


def test_5xx_and_an_aborted_step_break_the_slo():
    slo = parse_slo(["p99<1s", "5xx_rate<0.01"])
    knee = find_knee(
        [step(10, 10, 100), step(20, 19, 200, n5xx=20), step(30, 2, 100, status="aborted")], slo
    )
    assert knee.rps == 10 and "5xx_rate<0.01: measured 0.1" in knee.statement


def test_missing_the_slo_at_the_lowest_step_is_a_plain_statement():
    knee = find_knee([step(5, 5, 900)], parse_slo(["p99<800ms"]))
    assert knee.step is None and knee.rps is None
    assert knee.statement.startswith("the target misses the SLO even at the lowest step (5 req/s")


def test_no_breaking_step_gives_a_lower_bound():
    knee = find_knee([step(5, 5, 100), step(10, 10, 100)], parse_slo(["p99<800ms"]))
    assert knee.rps == 10 and not knee.bounded and "at least 10.0" in knee.statement


def test_planner_grows_then_bisects_within_budget_and_caps():
    kw = dict(start=10, growth=1.5, max_rate=100, resolution=0.1, budget=8)
    assert next_rate([], **kw) == 10
    assert next_rate([(10, True)], **kw) == 15
    assert next_rate([(10, True), (15, True)], **kw) == 22.5
    r = next_rate([(10, True), (15, True), (22.5, False)], **kw)
    assert r == pytest.approx((15 * 22.5) ** 0.5, abs=0.01)
    assert next_rate([(10, True), (20, True), (21, False)], **kw) is None  # within resolution
    assert next_rate([(10, False)], **kw) is None  # broke at the lowest step: stop
    assert next_rate([(80, True)], **kw) == 100  # capped at max_rate
    assert next_rate([(100, True)], **kw) is None
    assert next_rate([(1, True)] * 8, **kw) is None  # budget spent


# USL fit: recovered within sigma +-0.01 (absolute) and kappa +-20 % (relative) at 1 % noise.
@pytest.mark.parametrize(
    ("lam", "sigma", "kappa"), [(10.0, 0.05, 0.002), (50.0, 0.2, 0.0005), (3.0, 0.02, 0.01)]
)
def test_usl_fit_recovers_known_sigma_and_kappa(lam, sigma, kappa):
    rng = np.random.default_rng(7)
    n = np.array([1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64], dtype=float)
    x = usl(n, lam, sigma, kappa) * (1 + rng.normal(0, 0.01, n.size))
    fit = fit_usl(list(zip(n, x, strict=True)))
    assert fit.supported, fit.reason
    assert fit.sigma == pytest.approx(sigma, abs=0.01)
    assert fit.kappa == pytest.approx(kappa, rel=0.2)
    assert fit.lam == pytest.approx(lam, rel=0.05)
    assert fit.peak_concurrency == pytest.approx(((1 - sigma) / kappa) ** 0.5, rel=0.15)
    assert fit.r2 > 0.99


def test_usl_fit_says_so_when_the_data_does_not_support_it():
    few = fit_usl([(1, 10), (2, 19), (3, 27)])
    assert not few.supported and "at least 4" in few.reason and few.sigma is None
    narrow = fit_usl([(4, 30), (4.5, 31), (5, 33), (6, 34)])
    assert not narrow.supported and "spans" in narrow.reason and narrow.lam is None
    rng = np.random.default_rng(3)
    noise = fit_usl(list(zip(np.linspace(1, 20, 12), rng.uniform(5, 50, 12), strict=True)))
    assert not noise.supported and noise.sigma is None and noise.kappa is None


def test_recommendation_io_bound_is_gthread_with_the_arithmetic():
    r = recommend(
        target_rps=30,
        service_ms=100,
        headroom=0.3,
        cpu_share=0.05,
        cores=2,
        memory=Memory(per_worker_mb=60, source="testbed", limit_mb=1024),
    )
    # L = 3, slots = ceil(3.9) = 4; 1/c = 20 -> capped 8; workers max(2, 1, 1) = 2; threads 2.
    assert (r.worker_class, r.workers, r.threads, r.slots) == ("gthread", 2, 2, 4)
    assert r.capacity_rps == pytest.approx(40.0)
    assert r.memory_total_mb == 120
    assert r.gunicorn_args == "--workers 2 --worker-class gthread --threads 2 --keep-alive 65"
    assert r.keepalive == 65  # above the proxy's (default ALB) 60 s idle timeout
    assert any("ceil(3.00 x 1.3) = 4" in line for line in r.arithmetic)
    assert "I/O-bound" in r.why_class


def test_recommendation_cpu_bound_is_sync_and_flags_cpu_and_memory():
    r = recommend(
        target_rps=30,
        service_ms=100,
        headroom=0.3,
        cpu_share=0.8,
        cores=2,
        memory=Memory(per_worker_mb=300, source="--worker-memory", limit_mb=1000),
    )
    assert (r.worker_class, r.workers, r.threads) == ("sync", 4, 1)
    assert "CPU-bound" in r.why_class
    assert any("cores" in n for n in r.notes)
    assert any("OOM" in n for n in r.notes)


def test_recommendation_without_a_cpu_share_is_conservative_sync():
    r = recommend(target_rps=10, service_ms=250)
    assert r.worker_class == "sync" and r.workers == 4  # ceil(2.5 x 1.3) = 4
    assert "unknown" in r.why_class and any("memory per worker unknown" in n for n in r.notes)


def test_usl_fit_refuses_a_target_that_never_saturated():
    fit = fit_usl([(1, 10), (2, 19.8), (4, 39), (8, 77)])
    assert not fit.supported and "never saturated" in fit.reason and fit.kappa is None


def test_usl_fit_of_a_worker_pool_plateau_says_kappa_is_not_backed_by_a_decline():
    # 2 slots x 100 ms: linear up to N = 2, then flat at 20 req/s (what the testbed measures).
    fit = fit_usl([(1.0, 9.8), (1.5, 14.6), (2.2, 18.9), (4.3, 19.4), (9.3, 19.5), (17, 19.6)])
    assert fit.supported, fit.reason
    assert fit.sigma > 0.1  # contention carries the plateau
    assert fit.retrograde_measured in (False, None)
    decline = fit_usl([(1, 10), (2, 18), (4, 30), (8, 38), (16, 33), (32, 20)])
    assert decline.supported and decline.kappa > 0 and decline.retrograde_measured is True


def test_cpu_share_takes_out_the_time_workers_waited_for_a_cpu():
    from albprobe.tuning import cpu_share_of

    # 100 requests of 50 ms CPU each, but a busy machine stretched each to 250 ms in system:
    # 20 s of the 25 s were waits for a core. Without the waits it would read 20 %: I/O-bound.
    assert cpu_share_of(5.0, None, 100, 250.0) == 0.2
    assert cpu_share_of(5.0, 20.0, 100, 250.0) == 1.0
    # a sleeping endpoint stays I/O-bound whatever the machine's load
    assert cpu_share_of(0.5, 0.1, 100, 100.0) == 0.5 / (10.0 - 0.1)
    assert cpu_share_of(1.0, 50.0, 10, 100.0) == 1.0  # never above 1
    assert cpu_share_of(0.0, None, 0, 100.0) is None


def test_worker_usage_reads_the_time_a_process_waited_for_a_cpu():
    import os

    from testbed.procstat import usage

    u = usage(os.getpid())
    assert u is not None and u.cpu_seconds > 0
    assert u.wait_seconds is not None and u.wait_seconds >= 0
