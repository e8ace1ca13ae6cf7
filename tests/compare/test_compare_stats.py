"""The statistics of `albprobe compare` as pure functions: no run directory, no network."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.compare import stats
from analysis.compare.data import Counts, Latency
from analysis.compare.judge import Figure, Settings, judge, latency_figures, overall, rate_figures


def test_mann_whitney_matches_a_hand_count():
    # base {1,2,3}, new {4,5,6}: every new value is larger, U_new = 9 of 9
    r = stats.mann_whitney(np.array([1.0, 2, 3]), np.array([4.0, 5, 6]))
    assert r.u == 9 and r.prob_greater == 1.0
    same = stats.mann_whitney(np.array([1.0, 2, 3, 4]), np.array([1.0, 2, 3, 4]))
    assert same.prob_greater == 0.5 and same.p == 1.0


def test_mann_whitney_is_calibrated_under_the_null():
    rng = np.random.default_rng(1)
    ps = [stats.mann_whitney(rng.normal(size=30), rng.normal(size=30)).p for _ in range(400)]
    assert 0.02 <= np.mean(np.array(ps) < 0.05) <= 0.09


def test_holm_and_bh_adjust_as_defined():
    p = [0.01, 0.04, 0.03, 0.005]
    assert stats.holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.benjamini_hochberg(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert stats.holm([]) == [] and stats.benjamini_hochberg([0.5]) == [0.5]


def test_two_proportions_uses_the_burstier_variance():
    # the same 20 failures in 2000 requests, spread out vs all in one window
    n = np.full(20, 100.0)
    spread = np.full(20, 1.0)
    burst = np.zeros(20)
    burst[3] = 20.0
    base_e = np.full(20, 0.5)
    a = stats.two_proportions(base_e, n, spread, n)
    b = stats.two_proportions(base_e, n, burst, n)
    assert a.delta == pytest.approx(b.delta) == pytest.approx(0.005)
    assert b.p > a.p  # a burst is weaker evidence of a rate change than a steady rise
    assert a.ci[0] < a.delta < a.ci[1]


def test_no_failure_in_either_run_still_has_an_interval():
    """0 of 863 vs 0 of 957: the interval was [+0.00, +0.00] points, as if both rates were known
    exactly; Agresti-Caffo's is what that many clean requests can still hide."""
    t = stats.two_proportions(np.full(9, 0.0), np.full(9, 863 / 9), np.zeros(10), np.full(10, 95.7))
    assert t.delta == 0 and t.p == 1.0
    assert -0.004 < t.ci[0] < -0.002 and 0.002 < t.ci[1] < 0.004
    # more requests, a narrower interval; all failing in both runs is the mirror case
    big = stats.two_proportions(
        np.zeros(1), np.full(1, 90_000.0), np.zeros(1), np.full(1, 90_000.0)
    )
    assert big.ci[1] - big.ci[0] < (t.ci[1] - t.ci[0]) / 5
    full = stats.two_proportions(
        np.full(1, 500.0), np.full(1, 500.0), np.full(1, 400.0), np.full(1, 400.0)
    )
    assert full.ci[0] < 0 < full.ci[1] and full.p == 1.0


def test_block_bootstrap_is_wider_than_the_row_bootstrap_when_seconds_share_slowness():
    rng = np.random.default_rng(3)
    win = np.repeat(np.arange(40), 50)
    slow = np.exp(rng.normal(0, 0.3, 40))[win]
    x = 100 * slow * rng.lognormal(0, 0.2, len(win))
    y = 100 * np.exp(rng.normal(0, 0.3, 40))[win] * rng.lognormal(0, 0.2, len(win))
    (blk,) = stats.quantile_shifts(x, win, y, win, [0.5], seed=1)
    (row,) = stats.quantile_shifts(x, np.arange(len(x)), y, np.arange(len(y)), [0.5], seed=1)
    width = lambda s: s.ratio_ci[1] - s.ratio_ci[0]  # noqa: E731
    assert width(blk) > 2 * width(row)


def _lat(rng, n, scale, windows=40):
    win = rng.integers(0, windows, n).astype(np.int32)
    return Latency(scale * rng.lognormal(np.log(100), 0.3, n), win)


def test_a_shift_is_regressed_only_beyond_the_minimum_effect():
    rng = np.random.default_rng(5)
    s = Settings()
    base = _lat(rng, 4000, 1.0)
    small = latency_figures("x", base, _lat(rng, 4000, 1.05), s)
    big = latency_figures("x", base, _lat(rng, 4000, 1.3), s)
    judge(small + big, s)
    p50_small = next(f for f in small if f.name == "p50")
    p50_big = next(f for f in big if f.name == "p50")
    assert p50_big.judgement == "regressed"
    # +5 % may well be significant with 4000 rows, but is below the 10 % minimum effect
    assert p50_small.judgement == "unchanged"
    assert overall(small + big, s).result == "fail"


def test_too_few_samples_are_inconclusive_never_regressed():
    rng = np.random.default_rng(6)
    s = Settings()
    figs = latency_figures("x", _lat(rng, 60, 1.0), _lat(rng, 60, 3.0), s)
    judge(figs, s)
    assert {f.judgement for f in figs if f.name.startswith("p")} == {"inconclusive"}
    counts = Counts(
        np.full(3, 10.0),
        {
            p: np.zeros(3)
            for p in ("proxy_5xx", "server_5xx", "app_error", "network", "cors_blocked")
        },
    )
    worse = Counts(np.full(3, 10.0), {p: np.full(3, 5.0) for p in counts.events})
    rates = rate_figures("x", counts, worse, s)
    judge(rates, s)
    assert {f.judgement for f in rates} == {"inconclusive"}


def test_a_failure_step_is_regressed_and_a_tiny_one_is_not():
    s = Settings()
    n = np.full(40, 50.0)
    zero = {
        p: np.zeros(40) for p in ("proxy_5xx", "server_5xx", "app_error", "network", "cors_blocked")
    }
    step = dict(zero, proxy_5xx=np.full(40, 2.0))  # 4 %
    tiny = dict(zero, proxy_5xx=np.r_[np.ones(4), np.zeros(36)])  # 0.2 %
    figs = rate_figures("a", Counts(n, zero), Counts(n, step), s)
    figs += rate_figures("b", Counts(n, zero), Counts(n, tiny), s)
    judge(figs, s)
    j = {f.key: f.judgement for f in figs}
    assert j["a:proxy_5xx_rate"] == "regressed"
    assert j["b:proxy_5xx_rate"] == "unchanged"
    assert j["a:server_5xx_rate"] == "unchanged"


def test_overall_is_marginal_on_a_lead_the_correction_removes():
    s = Settings()
    # Holm: 0.003 x 4 > 0.05 is not significant; BH: the four small p-values hold each other up
    f = Figure("x", "p99", "ms", 100.0, 130.0, 0.3, p=0.014, tested=True)
    others = [Figure("y", "p50", "ms", 1.0, 1.0, 0.0, p=0.013, tested=True) for _ in range(3)]
    judge([f, *others], s)
    assert f.judgement == "unchanged" and f.p_adj > 0.05
    assert overall([f, *others], s).result == "marginal"


def test_an_absolute_floor_keeps_a_small_endpoint_from_regressing():
    s = Settings(min_latency_ms=2.0)
    tiny = Figure("fast", "p50", "ms", 3.0, 4.2, 0.4, p=1e-9, tested=True)  # +40 %, +1.2 ms
    big = Figure("slow", "p50", "ms", 300.0, 420.0, 0.4, p=1e-9, tested=True)
    judge([tiny, big], s)
    assert tiny.judgement == "unchanged" and "2 ms" in tiny.why
    assert big.judgement == "regressed"
    judge([tiny], Settings(min_latency_ms=0))
    assert tiny.judgement == "regressed"  # floor off
    assert Settings().min_latency_ms == 2.0  # the default floor
