"""The (all) scope is judged at the baseline's endpoint mix: two runs of one build whose users
happened to pick a fast and a slow endpoint (or a flaky and a sound one) in other proportions are
no regression, while a slower or more failing build still is (analysis/compare/mix.py)."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.compare import compare_runs, mix
from analysis.compare.data import ALL, Counts, Latency
from analysis.reports import compare_html
from fixtures import synth_compare as sc

# far apart on purpose: the run-wide median sits where they meet and jumps with the mix
ENDPOINTS = {"steady": 30.0, "slow": 600.0}


def _lat(values: list[float], window: int = 0) -> Latency:
    return Latency(np.array(values, dtype=float), np.full(len(values), window, dtype=np.int32))


def test_at_mix_keeps_the_shares_it_is_given_and_each_endpoints_spread():
    lat = {"a": _lat(list(range(100))), "b": _lat([1000.0 + i for i in range(300)])}
    out = mix.at_mix(lat, ["a", "b"], {"a": 0.5, "b": 0.5})
    a = out.ms[out.ms < 1000]
    b = out.ms[out.ms >= 1000]
    assert len(a) == len(b) == 100  # "a" runs out first and sets the size
    # evenly spaced order statistics of b: its smallest and largest value both kept
    assert b.min() == 1000.0 and b.max() == 1299.0
    assert mix.shares(lat, ["a", "b"]) == {"a": 0.25, "b": 0.75}


def test_no_mix_to_keep_for_one_endpoint_or_an_endpoint_without_answers():
    one = {"a": _lat([1.0, 2.0])}
    assert mix.standardised(one, one, ["a"]) is None
    base = {"a": _lat([1.0]), "b": _lat([2.0])}
    assert mix.standardised(base, {"a": _lat([1.0]), "b": _lat([])}, ["a", "b"]) is None


def _run(root, run_id: str, seed: int, steady: int, slow: int, **kw):
    """A synthetic run of ENDPOINTS with these many requests on each (kw: write_run's)."""
    return sc.write_run(
        root,
        run_id,
        seed=seed,
        endpoints=ENDPOINTS,
        per_endpoint={"steady": steady, "slow": slow},
        **kw,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("mix")
    slower = {"steady": 1.4, "slow": 1.4}
    return {
        "base": _run(root, "base", 1, 1100, 900),  # 55 % steady, as the testbed's failing pair
        "same": _run(root, "same", 2, 920, 1080),  # 46 % steady: the same build, another mix
        "slower": _run(root, "slower", 3, 920, 1080, latency_scale=slower),  # 40 % slower
    }


def _all_p50(cmp) -> tuple[str, float]:
    f = next(f for f in cmp.figures if f.scope == ALL and f.name == "p50")
    return f.judgement, f.effect


def test_another_mix_of_the_same_build_passes(runs):
    cmp = compare_runs(runs["base"], runs["same"], with_verdicts=False)
    judgement, effect = _all_p50(cmp)
    assert cmp.overall.result == "pass", cmp.overall.reasons
    assert judgement == "unchanged" and abs(effect) < 0.1
    note = next(n for n in cmp.notes if n.startswith("(all) latency"))
    assert "(slow 45%, steady 55%)" in note and "the new run's: slow 54%, steady 46%" in note
    # the raw run-wide medians are far apart: this is what the mix alone did
    raw = [np.median(cmp.base.latency[ALL].ms), np.median(cmp.new.latency[ALL].ms)]
    assert raw[1] / raw[0] > 3


def test_a_slower_build_in_another_mix_still_fails(runs):
    cmp = compare_runs(runs["base"], runs["slower"], with_verdicts=False)
    judgement, effect = _all_p50(cmp)
    assert cmp.overall.result == "fail"
    assert judgement == "regressed" and 0.25 < effect < 0.6
    per_ep = {(f.scope, f.name): f.judgement for f in cmp.figures}
    assert per_ep[("steady", "p50")] == per_ep[("slow", "p50")] == "regressed"


def test_counts_at_mix_weights_each_endpoints_rate_and_keeps_the_total():
    # two windows; "a" fails 10 % of its requests, "b" none; the run sent "a" 75 %
    windows = {
        "a": Counts(np.array([60.0, 90.0]), {"proxy_5xx": np.array([6.0, 9.0])}),
        "b": Counts(np.array([30.0, 20.0]), {"proxy_5xx": np.array([0.0, 0.0])}),
    }
    assert mix.request_shares(windows, ["a", "b"]) == {"a": 0.75, "b": 0.25}
    out = mix.counts_at_mix(windows, ["a", "b"], {"a": 0.5, "b": 0.5})
    assert out.total == 200
    assert out.events["proxy_5xx"].sum() / out.n.sum() == pytest.approx(0.05)  # 0.5 x 10 %
    # each window keeps its own counts, weighted: a x 2/3, b x 2
    assert out.n.tolist() == pytest.approx([100.0, 100.0])


@pytest.fixture(scope="module")
def flaky_runs(tmp_path_factory):
    """ "slow" answers 10 % proxy 502s in every run; enough requests for a 1-point change of the
    run-wide rate to be significant."""
    root = tmp_path_factory.mktemp("flaky")
    flaky = {"slow": 0.1}
    return {
        "base": _run(root, "base", 1, 11000, 9000, fail_step=flaky),
        # the same build; users picked "slow" more often
        "same": _run(root, "same", 2, 9200, 10800, fail_step=flaky),
        # and "steady" fails 2 % more
        "failing": _run(root, "failing", 3, 9200, 10800, fail_step=flaky | {"steady": 0.02}),
    }


def _all_rate(cmp) -> object:
    return next(f for f in cmp.figures if f.scope == ALL and f.name == "proxy_5xx_rate")


def test_another_mix_of_a_flaky_endpoint_is_no_failure_rate_regression(flaky_runs):
    cmp = compare_runs(flaky_runs["base"], flaky_runs["same"], with_verdicts=False)
    f = _all_rate(cmp)
    assert cmp.overall.result == "pass", cmp.overall.reasons
    assert f.judgement == "unchanged" and abs(f.effect) < 0.005
    # what the mix alone does to the raw run-wide rate: more than the minimum effect, and
    # significant on this many requests
    raw = [r.counts[ALL] for r in (cmp.base, cmp.new)]
    rates = [c.events["proxy_5xx"].sum() / c.n.sum() for c in raw]
    assert rates[1] - rates[0] > 0.008
    note = next(n for n in cmp.notes if n.startswith("(all) failure rates"))
    assert "of requests (slow 45%, steady 55%); the new run's: slow 54%, steady 46%" in note
    # the HTML's failure-mix chart (raw rates) says the (all) figures are weighted
    assert "as recorded" in compare_html._mix_caption(cmp)


def test_a_failing_build_in_another_mix_still_regresses_the_run_wide_rate(flaky_runs):
    cmp = compare_runs(flaky_runs["base"], flaky_runs["failing"], with_verdicts=False)
    f = _all_rate(cmp)
    assert cmp.overall.result == "fail"
    assert f.judgement == "regressed" and 0.005 < f.effect < 0.02


def test_one_note_when_both_mixes_print_alike():
    assert mix.notes("(a 50%, b 50%)", "(a 50%, b 50%)") == [
        "(all) latency and failure rates are judged at the baseline's endpoint mix (a 50%, b 50%)"
    ]
    assert mix.notes(None, None) == []
