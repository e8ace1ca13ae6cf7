"""The demo's abort window covers each scenario's own scheduled outage and its recovery."""

from __future__ import annotations

import dataclasses

from albprobe.commands.demo import RECOVERY_S, outage_seconds, scenario_config
from albprobe.demo_scenarios import SCENARIOS, DemoScenario


def test_outage_is_the_longest_fault_window() -> None:
    sc = dataclasses.replace(SCENARIOS["healthy"], faults=("target-down@5s-9s", "hang@10s-30s"))
    assert outage_seconds(sc) == 20
    unended = dataclasses.replace(sc, duration=40, faults=("blocked-port@25s",))
    assert outage_seconds(unended) == 15  # an unended fault lasts to the end of the run


def test_abort_window_outlasts_the_scheduled_outage() -> None:
    for sc in SCENARIOS.values():
        cfg = scenario_config(sc)
        outage = outage_seconds(sc)
        if outage:
            assert cfg.safety.abort_after >= outage + RECOVERY_S, sc.mode
        assert cfg.safety.abort_after >= 15.0  # never narrower than the default


def test_scenarios_without_faults_keep_the_default_abort_rule() -> None:
    sc: DemoScenario = SCENARIOS["capacity"]
    assert scenario_config(sc).safety == scenario_config(SCENARIOS["healthy"]).safety
