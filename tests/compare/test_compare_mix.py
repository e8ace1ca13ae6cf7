"""The (all) scope's latency is judged at the baseline's endpoint mix: two runs of one build whose
users happened to pick a fast and a slow endpoint in other proportions are no regression, while a
slower build still is (analysis/compare/mix.py)."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.compare import compare_runs, mix
from analysis.compare.data import ALL, Latency
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


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("mix")

    def run(run_id: str, seed: int, steady: int, slow: int, scale: float = 1.0):
        return sc.write_run(
            root,
            run_id,
            seed=seed,
            endpoints=ENDPOINTS,
            per_endpoint={"steady": steady, "slow": slow},
            latency_scale={"steady": scale, "slow": scale},
        )

    return {
        "base": run("base", 1, 1100, 900),  # 55 % steady, as the testbed's failing pair
        "same": run("same", 2, 920, 1080),  # 46 % steady: the same build, another mix
        "slower": run("slower", 3, 920, 1080, scale=1.4),  # and 40 % slower everywhere
    }


def _all_p50(cmp) -> tuple[str, float]:
    f = next(f for f in cmp.figures if f.scope == ALL and f.name == "p50")
    return f.judgement, f.effect


def test_another_mix_of_the_same_build_passes(runs):
    cmp = compare_runs(runs["base"], runs["same"], with_verdicts=False)
    judgement, effect = _all_p50(cmp)
    assert cmp.overall.result == "pass", cmp.overall.reasons
    assert judgement == "unchanged" and abs(effect) < 0.1
    note = next(n for n in cmp.notes if n.startswith("(all) latency is judged"))
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
