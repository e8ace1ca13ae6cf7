"""Pure parts of the load half: plans, abort rule, rate cap, labels, rows, schedules, safety."""

from __future__ import annotations

import dataclasses

import pytest

from albprobe.runner import check_caps, check_target_allowed, parse_fault_schedule
from core.config import Load, Safety, config_from_dict
from core.errors import AlbprobeError, ConfigError
from probes.loadgen.abort import AbortRule
from probes.loadgen.arrival import intended_times
from probes.loadgen.browser import failure_label
from probes.loadgen.load_clock import LoadClock
from probes.loadgen.meta import rows_reason
from probes.loadgen.plans import make_plan, peak_users
from probes.loadgen.plugin import ColumnBuffer, request_row
from probes.loadgen.ratelimit import TokenBucket
from testbed.config import FAULTS


def test_step_plan_climbs_and_stops():
    load = Load(shape="step", duration=35, users=30, step_users=10, step_every=10)
    plan = make_plan("step", load, max_users=500)
    assert [plan(t)[0] for t in (0, 9.9, 10, 20, 30)] == [10, 10, 20, 30, 30]
    assert plan(35) is None


def test_plans_are_capped_by_max_users():
    load = Load(shape="spike", duration=30, users=5, spike_users=900, spike_at=10, spike_for=5)
    plan = make_plan("spike", load, max_users=100)
    assert plan(0)[0] == 5 and plan(12)[0] == 100 and plan(16)[0] == 5
    assert peak_users("spike", load, 100) == 100


def test_open_model_times_constant_and_ramping():
    const = list(intended_times(100.0, 2.0, 5, 5))
    assert const == pytest.approx([100.0 + k / 5 for k in range(10)])
    ramp = list(intended_times(0.0, 10.0, 1, 9))  # 50 iterations over 10 s, denser at the end
    assert len(ramp) == 50
    assert ramp[1] - ramp[0] > ramp[-1] - ramp[-2]
    # two processes at half the rate interleave to the full schedule
    a = list(intended_times(0.0, 1.0, 5, 5, offset=0.0))
    b = list(intended_times(0.0, 1.0, 5, 5, offset=0.5))
    assert sorted(a + b) == pytest.approx([k / 10 for k in range(10)])


def test_load_clock_waits_for_every_connected_worker():
    clock = LoadClock()
    # w1 still in its test start: the duration has not begun, however long the master ran
    assert clock.elapsed(100.0, 4.0, ["w0", "w1"], {"w0"}) == 0.0
    assert clock.began_at is None
    assert clock.elapsed(101.0, 5.0, ["w0", "w1"], {"w0", "w1"}) == 0.0  # both ready: starts
    assert clock.elapsed(104.5, 8.5, ["w0", "w1"], {"w0", "w1"}) == 3.5
    # a worker that leaves or goes missing later does not stop or restart the clock
    assert clock.elapsed(106.0, 10.0, ["w0"], {"w0"}) == 5.0


def test_load_clock_does_not_wait_forever():
    clock = LoadClock()
    assert clock.elapsed(10.0, 29.0, ["w0"], set(), wait_s=30) == 0.0
    assert clock.elapsed(11.0, 30.0, ["w0"], set(), wait_s=30) == 0.0  # starts now, unready
    assert clock.began_at == 11.0 and clock.elapsed(13.0, 32.0, ["w0"], set()) == 2.0
    # no worker connected (all missing): no start until the wait is over
    assert LoadClock().elapsed(5.0, 1.0, [], set()) == 0.0


def test_rows_short_of_locusts_count_is_a_reason():
    assert rows_reason(100, 100, shipped=True) is None
    assert rows_reason(100, None, shipped=True) is None  # Locust's count unknown: no claim
    assert rows_reason(90, 1200, shipped=False) == (
        "recorded 90 of the 1,200 requests Locust counted"
    )
    assert "use worker-parts mode" in rows_reason(90, 1200, shipped=True)


def test_abort_rule_needs_a_sustained_streak():
    rule = AbortRule(threshold=0.5, seconds=3, min_requests=10)
    assert rule.check(0, 0, 0) is None
    assert rule.check(1, 10, 9) is None  # streak starts at t=0
    assert rule.check(2, 20, 18) is None
    assert rule.check(3, 20, 18) is None  # no traffic: neutral
    reason = rule.check(4, 30, 27)
    assert reason and "error rate stayed >= 50%" in reason


def test_abort_rule_streak_breaks_on_a_good_second():
    rule = AbortRule(threshold=0.5, seconds=2, min_requests=1)
    rule.check(0, 0, 0)
    assert rule.check(1, 10, 10) is None
    assert rule.check(2, 20, 10) is None  # 0 % failures this second: streak broken
    assert rule.check(3, 30, 20) is None
    assert rule.check(5, 40, 30) is not None


def test_token_bucket_caps_the_rate():
    clock = [0.0]
    bucket = TokenBucket(
        10, burst=1, clock=lambda: clock[0], sleep=lambda s: clock.__setitem__(0, clock[0] + s)
    )
    for _ in range(21):
        bucket.acquire()
    assert clock[0] == pytest.approx(2.0)  # 1 burst token + 20 at 10/s
    with pytest.raises(ValueError):
        TokenBucket(0)


@pytest.mark.parametrize(
    "args,label",
    [
        ((502, "proxy", False, "allow-origin-missing", None), "502 proxy (no ACAO)"),
        ((200, "app", False, "allow-origin-mismatch", None), "200 app (ACAO mismatch)"),
        ((500, "server", False, "allow-origin-missing", None), "500 server (no ACAO)"),
        ((500, "app", True, None, None), "500 app (CORS ok)"),
        (
            (0, "network", False, "network", "ConnectionRefusedError"),
            "0 network (ConnectionRefusedError)",
        ),
        ((200, "app", True, None, None), None),
    ],
)
def test_locust_failure_names_carry_source_and_cors_reason(args, label):
    assert failure_label(*args) == label


def test_request_row_computes_corrected_latency_and_keeps_no_headers():
    ctx = {
        "albprobe": True,
        "kind": "actual",
        "endpoint": "fast",
        "path": "/api/fast",
        "status": 502,
        "source": "proxy",
        "cors_ok": False,
        "cors_step": "allow-origin-missing",
        "intended_ts": 99.5,
        "user_id": 3,
    }
    row = request_row("GET", "fast", 250.0, 122, ctx, None, 100.0, "w1")
    assert row["co_latency_ms"] == pytest.approx(750.0) and row["latency_ms"] == 250.0
    assert row["worker_id"] == "w1" and row["user_id"] == 3 and row["status"] == 502
    buf = ColumnBuffer(["status", "source"])
    buf.append(row)
    assert buf.drain() == {"status": [502], "source": ["proxy"]} and buf.n == 0


def test_fault_schedule_parsing():
    steps = parse_fault_schedule(["target-down@20s-35s", "hang@5"], FAULTS)
    assert [(s.at, s.fault, s.on) for s in steps] == [
        (5, "hang", True),
        (20, "target-down", True),
        (35, "target-down", False),
    ]
    with pytest.raises(ConfigError, match="unknown fault"):
        parse_fault_schedule(["nope@1s"], FAULTS)
    with pytest.raises(ConfigError, match="NAME@START"):
        parse_fault_schedule(["target-down"], FAULTS)
    with pytest.raises(ConfigError, match="after the start"):
        parse_fault_schedule(["hang@10s-5s"], FAULTS)


def test_allow_list_and_caps():
    cfg = config_from_dict({"target": "https://api.example.com"})
    with pytest.raises(AlbprobeError, match="not on the load allow-list"):
        check_target_allowed(cfg)
    ok = dataclasses.replace(cfg, safety=Safety(allowed_hosts=("API.example.com",)))
    check_target_allowed(ok)
    check_target_allowed(config_from_dict({}))  # the testbed is always allowed
    big = dataclasses.replace(cfg, load=Load(users=10_000))
    with pytest.raises(ConfigError, match="max_users"):
        check_caps(big, "step")
    fast = dataclasses.replace(cfg, load=Load(shape="constant-rate", rate=1e6))
    with pytest.raises(ConfigError, match="max_rps"):
        check_caps(fast, "constant-rate")


def test_keepalive_race_scheduled_at_zero_is_the_targets_start_up_configuration(tmp_path):
    """Switching keepalive-race restarts gunicorn; at 0 s the testbed starts with it instead,
    so the first requests do not meet a restart's refused connects."""
    from albprobe.runner import parse_fault_schedule
    from albprobe.targets import TestbedTarget
    from core.rundir import RunDir
    from testbed.config import FAULTS

    cfg = config_from_dict({})
    steps = parse_fault_schedule(["keepalive-race@0s", "target-down@5s-8s"], FAULTS)
    t = TestbedTarget(cfg, RunDir(tmp_path), {}, steps, lambda e: None)
    assert "keepalive-race" in t.testbed.config.faults
    assert [(s.fault, s.at) for s in t.pending] == [("target-down", 5.0), ("target-down", 8.0)]
    later = parse_fault_schedule(["keepalive-race@3s"], FAULTS)
    t2 = TestbedTarget(cfg, RunDir(tmp_path / "b"), {}, later, lambda e: None)
    assert "keepalive-race" not in t2.testbed.config.faults and len(t2.pending) == 1
