"""A replay's offset 0 when Locust's start-up outlasts the lead (a busy machine): the plan moves
as a whole, and `albprobe run` times the replay's faults from where it moved to."""

from __future__ import annotations

import json

import pytest

from albprobe.runner import _load_started, replay_started
from core.rundir import RunDir
from probes.loadgen.plugin import REPLAY_MIN_LEAD_S, replay_start


def test_the_plan_keeps_its_start_when_locust_is_up_in_time():
    assert replay_start(100.0, now=90.0) == 100.0
    assert replay_start(100.0, now=100.0 - REPLAY_MIN_LEAD_S) == 100.0


def test_a_late_start_moves_the_whole_plan_past_now():
    # Locust's users came up 4 s after the planned offset 0: the plan starts the lead after now,
    # not with its first seconds sent at once
    assert replay_start(100.0, now=104.0) == pytest.approx(104.0 + REPLAY_MIN_LEAD_S)
    assert replay_start(100.0, now=99.5) == pytest.approx(99.5 + REPLAY_MIN_LEAD_S)


@pytest.fixture
def rundir(tmp_path):
    return RunDir(tmp_path)


def test_the_faults_clock_is_the_moved_start_minus_the_lead(rundir):
    assert _load_started(rundir, replay_lead=5.0) is None  # nothing reported yet: nothing due
    (rundir.path / "progress.json").write_text(json.dumps({"started_at": 200.0}))
    assert _load_started(rundir) == 200.0
    assert _load_started(rundir, replay_lead=5.0) is None  # a replay waits for its own start
    (rundir.path / "progress.json").write_text(
        json.dumps({"started_at": 200.0, "replay_start": 210.0})
    )
    assert replay_started(rundir) == 210.0
    # a fault planned at the plan's second 4 (shifted by the lead: 9 s) fires at 214
    assert _load_started(rundir, replay_lead=5.0) + 9.0 == pytest.approx(214.0)
