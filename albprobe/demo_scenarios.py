"""The demo scenarios: each failure mode of the matrix in docs/architecture.md, caused for real on the testbed.

Pure data: the load, the testbed's shape and fault schedule, and the verdict the analyzer must reach
(the end-to-end tests assert it). Durations are short enough for CI; the default demo stays under
two minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.config import Endpoint

FAST = Endpoint(name="fast", path="/api/fast", weight=6)
WRITE = Endpoint(
    name="write",
    path="/api/items",
    method="POST",
    weight=2,
    headers={"Content-Type": "application/json", "X-Client": "albprobe"},
    body='{"title": "demo"}',
)
SLOW = Endpoint(name="slow", path="/api/slow?ms=600", weight=2)
REPORT = Endpoint(
    name="report", path="/api/slow?ms=2500", weight=1
)  # outlives a 2 s gunicorn timeout


@dataclass(frozen=True)
class DemoScenario:
    mode: str
    title: str
    at_fault: str  # the verdict's at_fault the analyzer must reach
    causes: tuple[str, ...]  # cause ids that must be among the verdict's causes (first = top)
    shape: str
    duration: float
    load: dict[str, Any] = field(default_factory=dict)
    endpoints: tuple[Endpoint, ...] = (FAST, WRITE)
    testbed: dict[str, Any] = field(default_factory=dict)
    faults: tuple[str, ...] = ()  # schedule, e.g. "target-down@8s-14s"


# Capacity: 2 sync workers (2 slots), a 2 s gunicorn timeout, a 4 s proxy idle timeout, a step
# ramp to 16 users over a mix with slow calls: queueing past the idle timeout (504s), a call that
# outlives the gunicorn timeout (WORKER TIMEOUT -> gunicorn's own 500).
# Production-shaped failures among several targets (issue #10): two targets, short drains so each
# scenario stays under 40 s (the ALB's default deregistration_delay is 300 s).
_TWO = {"targets": 2, "deregistration_delay": 3.0, "graceful_timeout": 5.0}
_DEPLOY_LOAD = {"users": 5, "think_time": 0.1}
LONG = Endpoint(name="long", path="/api/slow?ms=2500", weight=2)  # outlives a 1 s drain

_CAPACITY_TESTBED = {"workers": 2, "worker_class": "sync", "timeout": 2.0, "idle_timeout": 4.0}
_CAPACITY_LOAD = {"step_users": 4, "step_every": 6.0, "users": 16, "think_time": 0.2}

SCENARIOS: dict[str, DemoScenario] = {
    s.mode: s
    for s in (
        DemoScenario(
            mode="default",
            title="load climbs past gunicorn's capacity, and the target is killed midway",
            at_fault="proxy",
            causes=("target-down", "capacity"),
            shape="step",
            duration=70,
            load=_CAPACITY_LOAD | {"step_every": 8.0},
            endpoints=(FAST, WRITE, SLOW, REPORT),
            testbed=_CAPACITY_TESTBED,
            faults=("target-down@40s-50s",),
        ),
        DemoScenario(
            mode="healthy",
            title="nothing wrong: the control run",
            at_fault="none",
            causes=(),
            shape="users",
            duration=15,
            load={"users": 5, "think_time": 0.1},
        ),
        DemoScenario(
            mode="target-down",
            title="gunicorn is killed mid-run (and restarted later)",
            at_fault="proxy",
            causes=("target-down",),
            shape="users",
            duration=22,
            load={"users": 5, "think_time": 0.05},
            faults=("target-down@7s-16s",),
        ),
        DemoScenario(
            mode="capacity",
            title="load above workers x threads, slow endpoint, short gunicorn timeout",
            at_fault="proxy",
            causes=("capacity",),
            shape="step",
            duration=30,
            load=_CAPACITY_LOAD,
            endpoints=(FAST, WRITE, SLOW, REPORT),
            testbed=_CAPACITY_TESTBED,
        ),
        DemoScenario(
            mode="keepalive-race",
            title="backend keep-alive (1 s) below the proxy's idle reuse (60 s), idle gaps around it",
            at_fault="proxy",
            causes=("keepalive-race",),
            shape="idle-gap",
            duration=30,
            load={"users": 12, "gap": 1.5, "gap_jitter": 0.6},
            endpoints=(FAST,),
            testbed={"faults": frozenset({"keepalive-race"})},
        ),
        DemoScenario(
            mode="health-host",
            title="ALLOWED_HOSTS rejects the health checker's Host (the target IP)",
            at_fault="proxy",
            causes=("health-check-config",),
            shape="users",
            duration=15,
            load={"users": 4, "think_time": 0.1},
            testbed={"faults": frozenset({"health-host"})},
        ),
        DemoScenario(
            mode="blocked-port",
            title="the proxy cannot reach port 8000 (like a missing security-group rule)",
            at_fault="proxy",
            causes=("connectivity",),
            shape="users",
            duration=20,
            load={"users": 4, "think_time": 0.1},
            testbed={"connect_timeout": 2.0},
            faults=("blocked-port@5s",),
        ),
        DemoScenario(
            mode="cors-misconfig",
            title="the front origin is missing from CORS_ALLOWED_ORIGINS (control: not the proxy)",
            at_fault="cors-setup",
            causes=("cors-setup",),
            shape="users",
            duration=12,
            load={"users": 4, "think_time": 0.1},
            testbed={"faults": frozenset({"cors-misconfig"})},
        ),
        DemoScenario(
            mode="deploy",
            title="a correct rolling deploy: deregister, drain, SIGTERM, start, register, healthy (control)",
            at_fault="none",
            causes=(),
            shape="users",
            duration=34,
            load=_DEPLOY_LOAD,
            endpoints=(FAST, WRITE, SLOW),
            testbed=_TWO,
            faults=("deploy@4s",),
        ),
        DemoScenario(
            mode="deploy-stop-first",
            title="a deploy that stops each container before deregistering it",
            at_fault="proxy",
            causes=("deploy",),
            shape="users",
            duration=34,
            load=_DEPLOY_LOAD,
            endpoints=(FAST, WRITE, SLOW),
            testbed=_TWO,
            faults=("deploy-stop-first@4s",),
        ),
        DemoScenario(
            mode="deploy-short-drain",
            title="a deploy whose drain (1 s) is shorter than the requests in flight (2.5 s)",
            at_fault="proxy",
            causes=("deploy",),
            shape="users",
            duration=30,
            load={"users": 10, "think_time": 0.1},
            endpoints=(FAST, LONG),
            # gthread 2 x 4 per target: the long calls never queue (no capacity story), and
            # several are in flight on each target when its drain ends
            testbed=_TWO
            | {"deregistration_delay": 1.0, "worker_class": "gthread", "workers": 2, "threads": 4},
            faults=("deploy@4s",),
        ),
        DemoScenario(
            mode="deploy-early-register",
            title="a deploy that registers each new target before its app listens (health check on a sidecar)",
            at_fault="proxy",
            causes=("deploy",),
            shape="users",
            duration=38,
            load=_DEPLOY_LOAD,
            endpoints=(FAST, WRITE),
            testbed=_TWO | {"app_boot_seconds": 5.0},
            faults=("deploy-early-register@4s",),
        ),
        DemoScenario(
            mode="one-target-bad",
            title="one target of two dies while the other serves: 502s at its share until health checks remove it",
            at_fault="proxy",
            causes=("target-down",),
            shape="users",
            duration=20,
            load={"users": 5, "think_time": 0.05},
            testbed=_TWO,
            faults=("target-down:2@6s",),
        ),
        DemoScenario(
            mode="worker-kill",
            title="the OOM killer's pattern: SIGKILL a gunicorn worker in the middle of a request",
            at_fault="proxy",
            causes=("worker-kill",),
            shape="users",
            duration=20,
            # 3 workers for 3 users: no queueing, so the only 502s are the killed requests
            load={"users": 3, "think_time": 0.2},
            endpoints=(FAST, SLOW),
            testbed={"workers": 3},
            faults=("worker-kill@6s", "worker-kill@12s"),
        ),
        DemoScenario(
            mode="worker-recycle",
            title="gunicorn --max-requests with jitter under keep-alive (gthread)",
            at_fault="none",
            causes=(),
            shape="users",
            duration=25,
            load={"users": 6, "think_time": 0.05},
            endpoints=(FAST, SLOW),
            testbed={
                "worker_class": "gthread",
                "workers": 2,
                "threads": 4,
                # above the proxy's 60-s idle timeout (the keep-alive race's fix): with 5 s, a
                # load that started 5 s after the run's CORS probes met a connection gunicorn was
                # closing (a keepalive-race 502 on a busy machine, rightly diagnosed as one)
                "keepalive": 65.0,
                "max_requests": 40,
                "max_requests_jitter": 10,
                # the ALB's default check timeout: a check that meets a worker booting Django on
                # a starved machine waits for it instead of calling the target unhealthy (1 s
                # did on a busy CI box, and the control then blamed the proxy)
                "health_timeout": 5.0,
            },
        ),
        DemoScenario(
            mode="http-redirect",
            title="the front end calls http://: the ALB's port-80 listener answers with its 301 "
            "to HTTPS, and the browser refuses the redirected preflight",
            at_fault="proxy",
            causes=("http-redirect",),
            shape="users",
            duration=12,
            load={"users": 4, "think_time": 0.1},
            testbed={"listener": "http-redirect"},
        ),
    )
}
MODES = tuple(m for m in SCENARIOS if m != "default")
