"""The verdict sweep's scenario generator (bench/sweep_scenarios.py): pure, seeded, and every
scenario is a config the CLI accepts with a fault schedule the runner parses."""

from __future__ import annotations

from albprobe.targets import check_schedule, parse_fault_schedule
from bench.sweep_scenarios import CONTROLS, EXPECTED, KINDS, generate
from core.config import load_config
from core.shapes_catalog import SHAPES
from testbed import TestbedConfig
from testbed.config import FAULTS

FIRST_RELEASE = KINDS[:7]


def test_same_seed_same_scenario_and_seeds_differ():
    assert generate(1234) == generate(1234)
    assert len({generate(s).describe() for s in range(1000, 1030)}) == 30


def test_consecutive_seeds_cover_every_fault_and_the_parameters_vary():
    everything = [generate(s) for s in range(1000, 1000 + 3 * len(KINDS))]
    assert {s.fault for s in everything} == set(KINDS)
    scs = [s for s in everything if s.fault in FIRST_RELEASE]
    assert set(FIRST_RELEASE) - {"healthy"} <= set(FAULTS)
    assert {s.worker_class for s in scs} == {"sync", "gthread"}
    assert len({s.workers for s in scs}) > 1 and len({s.idle_timeout for s in scs}) > 1
    assert any(s.authorization for s in scs) and not all(s.authorization for s in scs)
    assert any(e.json_body for s in scs for e in s.endpoints)  # preflighted writes
    assert {s.shape for s in scs} <= set(SHAPES) and len({s.shape for s in scs}) >= 3
    for s in scs:
        assert 15 <= s.duration <= 40
        assert s.expected == EXPECTED[s.fault]
        assert (s.window is None) == (s.fault == "healthy") and len(s.faults) <= 1
        if s.window:
            assert s.window.startswith(s.fault + "@")
        if s.fault == "hang":  # a hung call must outlive gunicorn's timeout within the run
            assert s.timeout + 5 < s.duration
    assert {s.expected[1] for s in scs if s.fault in CONTROLS} == {None, "cors-setup"}


def test_the_production_modes_draw_their_groups_fronts_and_schedules():
    scs = [generate(s) for s in range(5000, 5000 + 6 * len(KINDS))]
    by_kind = {k: [s for s in scs if s.fault == k] for k in KINDS}
    assert all(len(v) == 6 for v in by_kind.values())
    for s in scs:
        steps = parse_fault_schedule(list(s.faults), FAULTS)
        # the runner accepts the schedule: targets named exist, every drain ends within the run
        check_schedule(steps, s.targets, s.deregistration_delay, float(s.duration))
        # the testbed takes the settings that have no config key
        TestbedConfig(targets=s.targets, **s.testbed_overrides())
    for s in by_kind["one-target-bad"]:
        (spec,) = s.faults
        assert s.targets >= 2 and spec.startswith("target-down:")
    for kind in ("deploy", "deploy-stop-first", "deploy-early-register"):
        assert all(s.faults == (f"{kind}@{s.faults[0].split('@')[1]}",) for s in by_kind[kind])
    for s in by_kind["deploy-short-drain"]:  # its calls outlive the drain
        longest = max(int(e.path.split("ms=")[1]) for e in s.endpoints if "ms=" in e.path)
        assert longest / 1000 > s.deregistration_delay and s.faults[0].startswith("deploy@")
    assert all(s.testbed.get("app_boot_seconds") for s in by_kind["deploy-early-register"])
    for s in by_kind["worker-kill"]:  # one user per sync worker: the kills are the only 502s
        assert s.worker_class == "sync" and s.users == s.workers and 1 <= len(s.faults) <= 3
    assert all(s.max_requests > 0 and not s.faults for s in by_kind["worker-recycle"])
    assert all(s.listener == "http-redirect" for s in by_kind["http-redirect"])
    assert any(s.listener == "https" for s in scs)  # the HTTPS front, on its kinds only
    assert {s.fault for s in scs if s.listener == "https"} <= {
        "healthy",
        "target-down",
        "cors-misconfig",
        "health-host",
        "one-target-bad",
    }
    assert {"deploy", "worker-recycle"} <= set(CONTROLS)
    assert len({s.targets for s in scs}) >= 3  # one, two and three targets


def test_every_scenario_config_loads(tmp_path):
    for seed in range(2000, 2000 + 2 * len(KINDS)):
        sc = generate(seed)
        p = tmp_path / f"{seed}.toml"
        p.write_text(sc.config_toml(), encoding="utf-8")
        cfg = load_config(p)
        assert cfg.is_testbed and cfg.load.shape == sc.shape
        assert cfg.capacity.workers == sc.workers and cfg.proxy.idle_timeout == sc.idle_timeout
        assert len(cfg.endpoints) == len(sc.endpoints)
        assert cfg.testbed.targets == sc.targets
        assert cfg.capacity.max_requests == sc.max_requests
