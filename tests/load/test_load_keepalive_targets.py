"""keepalive-race on one target of several (`keepalive-race:N`): `albprobe run` plays it on the
real testbed, and the analyzer diagnoses it as with one target, naming the target."""

from __future__ import annotations

import json

import pytest

from albprobe.targets import parse_fault_schedule
from testbed.config import FAULTS

pytestmark = pytest.mark.slow

TWO_TARGETS = """
[testbed]
targets = 2
[load]
gap = 1.5
gap_jitter = 0.6
[[endpoints]]
name = "fast"
path = "/api/fast"
"""


def test_keepalive_race_names_a_target_in_the_schedule():
    (step,) = parse_fault_schedule(["keepalive-race:2@0s"], FAULTS)
    assert (step.fault, step.target, step.at, step.on) == ("keepalive-race", 2, 0.0, True)


def test_keepalive_race_on_target_2_is_diagnosed_with_its_target(cli, tmp_path):
    cfg = tmp_path / "ka.toml"
    cfg.write_text(TWO_TARGETS)
    r = cli.run(
        "--config",
        str(cfg),
        "--shape",
        "idle-gap",
        "--users",
        "12",
        "--duration",
        "30s",
        "--fault",
        "keepalive-race:2@0s",
        "--run-id",
        "ka2",
        timeout=180,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    meta = cli.meta("ka2")
    assert meta["status"] == "complete"
    second = meta["testbed"]["targets"][1]
    # switched before the load, on target 2 only
    assert [name for _, name, on in meta["testbed"]["fault_timeline"]] == ["keepalive-race:2"]
    summary = json.loads((cli.runs / "ka2" / "report" / "summary.json").read_text())
    causes = [c["id"] for c in summary["causes"]]
    assert summary["at_fault"] == "proxy" and causes[0] == "keepalive-race", summary["headline"]
    split = summary["figures"]["target_breakdown"]
    failed = {t["target"]: t["failed"] for t in split["targets"]}
    assert failed[second] > 0 and sum(failed.values()) == failed[second], split
    assert split["one_of_n"].startswith(f"1 of 2 targets: {second}")
    assert any(e.startswith("1 of 2 targets") for e in summary["causes"][0]["evidence"])
