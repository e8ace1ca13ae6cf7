"""The replay's testbed is shaped like the incident: the log's targets, threads for its busiest
moment, the ALB's health check, and a one-target cause on one testbed target. Found replaying a
hand-written "1 of 3 targets refuses connections" log on the default testbed (1 target, 2 sync
workers): the traffic alone overloaded it (105 x 504), the cause blocked every target and the
abort rule stopped the run; shaped, the replay brought back 227 of the original's 225 502s."""

from __future__ import annotations

import dataclasses

from albprobe.replaying import (
    MAX_TARGETS,
    Diagnosis,
    Prepared,
    ReplayRequest,
    cause_fault,
    run_options,
    shape_testbed,
)
from analysis.causes.base import Window
from analysis.replay_plan import PlanOptions, build_plan
from analysis.verdict import Cause
from core.config import Capacity, Config, TestbedGroup
from fixtures import alb_window as aw

T0 = 1_796_000_000.0
TARGETS = ("10.0.1.10:8000", "10.0.2.11:8000", "10.0.3.12:8000")


def _summary(tmp_path, *, speed: float = 1.0):
    """20 s, 10 req/s round robin over three targets, each request 1.2 s at its target."""
    es = [
        aw.Entry(
            at=T0 + i / 10,
            client=f"203.0.113.{i % 50}:{4000 + i}",
            target=TARGETS[i % 3],
            target_s=1.2,
        )
        for i in range(200)
    ]
    files = aw.write(tmp_path / "logs", [aw.line(e) for e in es])
    return build_plan(files, "logs", tmp_path / "plan", opts=PlanOptions(speed=speed))


def test_the_plan_counts_the_targets_and_the_requests_at_them_at_once(tmp_path):
    s = _summary(tmp_path)
    assert s.targets == 3
    # 10 arrivals a second, each 1.2 s at its target: 12 or 13 at once (the logged times)
    assert s.peak_busy in (12, 13)
    assert _summary(tmp_path / "x2", speed=2).peak_busy in (24, 25, 26)  # twice as dense


def test_the_default_testbed_takes_the_windows_shape(tmp_path):
    s = dataclasses.replace(_summary(tmp_path), peak_busy=100)
    tb = shape_testbed(Config(), s)
    assert tb.testbed.targets == 3
    assert tb.capacity.worker_class == "gthread" and tb.capacity.workers == 2
    # 100 x 1.5 + 1 = 151 threads over 3 targets x 2 workers: 26 threads each
    assert tb.capacity.threads == 26 and tb.capacity.slots * 3 >= 151
    assert tb.capacity.timeout == Capacity().timeout  # gunicorn's own default, as before
    assert "3 target(s) in the log, 100 requests at the targets at once" in tb.why
    many = dataclasses.replace(s, targets=9, peak_busy=5000)
    tb = shape_testbed(Config(), many)
    assert tb.testbed.targets == MAX_TARGETS
    assert "(the testbed runs 4)" in tb.why and "the replay will queue" in tb.why


def test_a_config_that_shapes_the_testbed_is_kept(tmp_path):
    s = _summary(tmp_path)
    cfg = Config(capacity=Capacity(workers=3))
    tb = shape_testbed(cfg, s)
    assert tb.capacity == cfg.capacity and tb.testbed == TestbedGroup()
    cfg = Config(testbed=TestbedGroup(targets=2))
    assert shape_testbed(cfg, s).testbed.targets == 2


def test_a_cause_on_one_target_of_several_is_switched_on_one_testbed_target():
    def on_one(cid: str) -> Cause:
        c = Cause(cid, 0.8, [], "")
        c.window = Window(first_ts=1000.0, last_ts=1030.0, offset_s=40.0, target=TARGETS[0])
        return c

    assert cause_fault(on_one("target-down"), None, targets=3) == "target-down:1@40s-71s"
    # the testbed blocks only the whole group's port: one target refusing is its target-down
    assert cause_fault(on_one("connectivity"), None, targets=3) == "target-down:1@40s-71s"
    assert cause_fault(on_one("keepalive-race"), None, targets=3) == "keepalive-race:1@0s"
    # one testbed target, or a cause on every target: the whole testbed
    assert cause_fault(on_one("target-down"), None, targets=1) == "target-down@40s-71s"
    assert cause_fault(on_one("connectivity"), None, targets=1) == "blocked-port@40s-71s"
    every = Cause("target-down", 0.8, [], "")
    every.window = Window(first_ts=1000.0, last_ts=1030.0, offset_s=40.0)
    assert cause_fault(every, None, targets=3) == "target-down@40s-71s"


def test_the_replays_testbed_checks_health_as_the_alb_does(tmp_path):
    s = _summary(tmp_path)
    req = ReplayRequest("logs", None, None, PlanOptions(), Config())
    prep = Prepared(
        tmp_path / "plan", s, Diagnosis("none", [], [], []), 20, shape_testbed(Config(), s)
    )
    opts = run_options(req, prep)
    hc = Config().aws.health_check
    assert opts.testbed_overrides == {
        "health_interval": hc.interval,
        "health_timeout": hc.timeout,
        "healthy_threshold": hc.healthy_threshold,
        "unhealthy_threshold": hc.unhealthy_threshold,
    }
    assert opts.config.testbed.targets == 3 and opts.config.capacity.worker_class == "gthread"


def test_workers_killed_at_the_timeout_in_the_log_mean_sync_workers(tmp_path):
    """A gthread worker keeps its heartbeat while a thread sleeps past --timeout, so gunicorn
    kills nothing (measured: 92 replayed 30.004-s requests all answered 200 after 30.04 s);
    a sync worker is killed as the original's were."""
    s = dataclasses.replace(_summary(tmp_path), peak_busy=20)
    tb = shape_testbed(Config(), s, timeout_kills=92)
    assert tb.capacity.worker_class == "sync" and tb.capacity.threads == 1
    assert tb.capacity.workers == 11  # 20 x 1.5 + 1 = 31 over 3 targets
    assert "92 workers killed at gunicorn's --timeout in the log: sync workers" in tb.why
    big = shape_testbed(Config(), dataclasses.replace(s, peak_busy=200), timeout_kills=1)
    assert big.capacity.workers == 12 and "the replay will queue" in big.why


def test_a_line_killed_at_the_timeout_asks_for_longer_than_the_timeout(tmp_path):
    """The log holds the time to the kill (about --timeout), not the request's own length: sent
    as logged, the answer races the kill (measured: 92 of 92 answered 200). Such lines ask for
    KILL_PAST_S more than the timeout; the others keep their logged target time."""
    import duckdb

    from analysis.replay_plan import KILL_PAST_S
    from fixtures import synth

    files = synth.write_alb_logs(tmp_path / "logs", 600, keepalive_every=0, kill_every=100)
    for timeout, files_ in ((None, files), (20.0, None)):
        opts = PlanOptions(gunicorn_timeout=timeout)
        out = tmp_path / f"plan-{timeout}"
        if files_ is None:  # the same kills read with --gunicorn-timeout 20: not at 20 s, kept
            build_plan(files, "logs", out, opts=opts)
            kills = 0
        else:
            build_plan(files_, "logs", out, opts=opts)
            kills = 6
        rows = duckdb.sql(
            f"SELECT target_ms FROM read_parquet('{out / 'plan.parquet'}') WHERE elb_status = 502"
        ).fetchall()
        want = (30.0 + KILL_PAST_S) * 1000
        assert sum(r[0] == want for r in rows) == kills, (timeout, rows)
