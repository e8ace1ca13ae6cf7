"""The verdict sweep's scenario generator (bench/sweep_scenarios.py): pure, seeded, and every
scenario is a config the CLI accepts with a fault schedule the runner parses."""

from __future__ import annotations

from bench.sweep_scenarios import CONTROLS, EXPECTED, KINDS, generate
from core.config import load_config
from core.shapes_catalog import SHAPES
from testbed.config import FAULTS


def test_same_seed_same_scenario_and_seeds_differ():
    assert generate(1234) == generate(1234)
    assert len({generate(s).describe() for s in range(1000, 1030)}) == 30


def test_consecutive_seeds_cover_every_fault_and_the_parameters_vary():
    scs = [generate(s) for s in range(1000, 1000 + 3 * len(KINDS))]
    assert {s.fault for s in scs} == set(KINDS)
    assert set(KINDS) - {"healthy"} <= set(FAULTS)
    assert {s.worker_class for s in scs} == {"sync", "gthread"}
    assert len({s.workers for s in scs}) > 1 and len({s.idle_timeout for s in scs}) > 1
    assert any(s.authorization for s in scs) and not all(s.authorization for s in scs)
    assert any(e.json_body for s in scs for e in s.endpoints)  # preflighted writes
    assert {s.shape for s in scs} <= set(SHAPES) and len({s.shape for s in scs}) >= 3
    for s in scs:
        assert 15 <= s.duration <= 40
        assert s.expected == EXPECTED[s.fault]
        assert (s.window is None) == (s.fault == "healthy")
        if s.window:
            assert s.window.startswith(s.fault + "@")
        if s.fault == "hang":  # a hung call must outlive gunicorn's timeout within the run
            assert s.timeout + 5 < s.duration
    assert {s.expected[1] for s in scs if s.fault in CONTROLS} == {None, "cors-setup"}


def test_every_scenario_config_loads(tmp_path):
    for seed in range(2000, 2014):
        sc = generate(seed)
        p = tmp_path / f"{seed}.toml"
        p.write_text(sc.config_toml(), encoding="utf-8")
        cfg = load_config(p)
        assert cfg.is_testbed and cfg.load.shape == sc.shape
        assert cfg.capacity.workers == sc.workers and cfg.proxy.idle_timeout == sc.idle_timeout
        assert len(cfg.endpoints) == len(sc.endpoints)
