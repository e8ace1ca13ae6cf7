"""What `albprobe run` loads: the local testbed (started and stopped with the run, with its fault
schedule) or a URL. Each says how it describes itself in run.json."""

from __future__ import annotations

import contextlib
import dataclasses
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from core.config import Config
from core.errors import ConfigError
from core.rundir import RunDir

if TYPE_CHECKING:
    from testbed import Testbed, TestbedConfig

Log = Callable[[str], None]
_FAULT_SPEC = re.compile(
    r"^(?P<name>[a-z-]+)(?::(?P<target>\d+))?@(?P<on>[\d.]+)s?(?:-(?P<off>[\d.]+)s?)?$"
)
# One-off actions in the schedule (no END): a rolling deploy in one of its orders, a worker kill.
DEPLOYS = {
    "deploy": "correct",
    "deploy-stop-first": "stop-first",
    "deploy-early-register": "early-register",
}
ACTIONS = (*DEPLOYS, "worker-kill")
# Faults that can name one target (testbed.config.TARGET_FAULTS), and worker-kill.
TARGETED = ("target-down", "hang", "health-host", "keepalive-race", "worker-kill")


@dataclass(frozen=True)
class FaultStep:
    at: float
    fault: str
    on: bool
    target: int | None = None  # 1-based target index; None = the whole target group


def parse_fault_schedule(specs: list[str], known: tuple[str, ...]) -> list[FaultStep]:
    """'target-down@20s' (on at 20 s), 'target-down@20s-35s' (on at 20 s, off at 35 s),
    'target-down:2@20s-35s' (target 2 only), 'deploy@10s' and 'worker-kill:1@8s' (one-off actions)."""
    steps: list[FaultStep] = []
    for spec in specs:
        m = _FAULT_SPEC.match(spec.strip())
        if not m:
            raise ConfigError(
                f"--fault {spec!r}: expected NAME@START[-END] or NAME:TARGET@START[-END], e.g. target-down:2@20s-35s"
            )
        name = m["name"]
        if name not in known and name not in ACTIONS:
            raise ConfigError(
                f"--fault {spec!r}: unknown fault {name!r}",
                hint=f"one of: {', '.join((*known, *ACTIONS))}",
            )
        target = int(m["target"]) if m["target"] else None
        if target is not None and (name not in TARGETED or target < 1):
            raise ConfigError(
                f"--fault {spec!r}: {name} cannot name a target"
                if name not in TARGETED
                else f"--fault {spec!r}: targets are numbered from 1",
                hint=f"faults that name a target: {', '.join(TARGETED)}",
            )
        if name in ACTIONS and m["off"]:
            raise ConfigError(
                f"--fault {spec!r}: {name} happens once; give a start only, e.g. {name}@10s"
            )
        on = float(m["on"])
        steps.append(FaultStep(on, name, True, target))
        if m["off"]:
            off = float(m["off"])
            if off <= on:
                raise ConfigError(f"--fault {spec!r}: the end must come after the start")
            steps.append(FaultStep(off, name, False, target))
    return sorted(steps, key=lambda s: s.at)


def check_schedule(steps: list[FaultStep], targets: int, delay: float, duration: float) -> None:
    """Refuse a schedule the testbed cannot play: a target that does not exist, a deploy whose
    drains (one deregistration_delay per target) outlast the run."""
    for step in steps:
        if step.target is not None and step.target > targets:
            raise ConfigError(
                f"--fault {step.fault}:{step.target}: target {step.target} does not exist",
                hint=f"the testbed has {targets} target(s); set [testbed] targets or name 1..{targets}",
            )
        if step.fault in DEPLOYS and step.at + targets * delay >= duration:
            raise ConfigError(
                f"--fault {step.fault}@{step.at:g}s: {targets} target(s) x deregistration_delay "
                f"{delay:g}s drain past the end of the {duration:g}s run",
                hint="shorten [testbed] deregistration_delay, start the deploy earlier or run longer",
            )


class UrlTarget:
    """An API behind a real proxy (the ALB); nothing to start."""

    testbed: Testbed | None = None

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.url = cfg.target

    def start(self, meta: dict[str, Any], log: Log) -> None:
        cfg = self.cfg
        meta.update(
            target={"kind": "url", "url": cfg.target, "host": urlsplit(cfg.target).hostname},
            capacity=dataclasses.asdict(cfg.capacity) | {"slots": cfg.capacity.slots},
            proxy={
                "kind": "alb",
                "idle_timeout": cfg.proxy.idle_timeout,
                "health_check": dataclasses.asdict(cfg.aws.health_check),
            },
        )

    def advance(self, elapsed: float, meta: dict[str, Any], log: Log) -> None:
        """Nothing scheduled against a URL (faults need the testbed)."""

    def status(self) -> str | None:
        return None

    def stop(self) -> None:
        pass


def testbed_config(cfg: Config, rundir: RunDir, overrides: dict[str, Any]) -> TestbedConfig:
    from testbed import TestbedConfig

    cap = cfg.capacity
    kw: dict[str, Any] = dict(
        worker_class=cap.worker_class if cap.worker_class in ("sync", "gthread") else "sync",
        workers=cap.workers,
        threads=cap.threads,
        timeout=cap.timeout,
        keepalive=cap.keepalive,
        graceful_timeout=cap.graceful_timeout,
        max_requests=cap.max_requests,
        max_requests_jitter=cap.max_requests_jitter,
        targets=cfg.testbed.targets,
        load_balancing=cfg.testbed.load_balancing,
        deregistration_delay=cfg.testbed.deregistration_delay,
        idle_timeout=cfg.proxy.idle_timeout,
        health_interval=1.0,
        health_timeout=0.5,
        healthy_threshold=2,
        unhealthy_threshold=2,
        log_dir=rundir.logs,
        front_origin=cfg.browser.origin,
    )
    kw.update(overrides)
    try:
        return TestbedConfig(**kw)
    except ValueError as exc:
        raise ConfigError(f"testbed: {exc}") from None


RESTARTING_FAULTS = frozenset({"keepalive-race"})


def _restarts_at_start(step: FaultStep) -> bool:
    return step.at <= 0 and step.on and step.fault in RESTARTING_FAULTS


class TestbedTarget:
    """The testbed as the target: logs into the run directory, its events into the events table,
    and the fault schedule applied as the load runs."""

    __test__ = False

    def __init__(
        self,
        cfg: Config,
        rundir: RunDir,
        overrides: dict[str, Any],
        faults: list[FaultStep],
        on_event: Callable[[dict[str, Any]], None],
    ) -> None:
        from testbed import Testbed

        tb_cfg = testbed_config(cfg, rundir, overrides)
        check_schedule(faults, tb_cfg.targets, tb_cfg.deregistration_delay, cfg.load.duration)
        # Switching keepalive-race restarts gunicorn with other settings; scheduled at 0 s it is
        # meant to be the target's configuration, so start with it instead of restarting under
        # the first requests (whose refused connects would read as a target going down).
        at_start = {f.fault for f in faults if _restarts_at_start(f) and f.target is None}
        if at_start:
            tb_cfg = tb_cfg.with_faults(*tb_cfg.faults, *at_start)
            faults = [f for f in faults if not (_restarts_at_start(f) and f.target is None)]
        self.testbed: Testbed | None = Testbed(tb_cfg)
        self.testbed.add_listener(on_event)
        self.pending = list(faults)
        self.url = ""

    def start(self, meta: dict[str, Any], log: Log) -> None:
        tb = self.testbed
        assert tb is not None
        log("starting the testbed (HAProxy as the ALB -> gunicorn -> Django)")
        tb.start()
        self.url = tb.url
        d = tb.describe()
        meta.update(
            target={
                "kind": "testbed",
                "url": tb.url,
                "host": "127.0.0.1",
                "listener": tb.config.listener,
            },
            capacity=d["capacity"],
            proxy=d["proxy"],
            testbed={
                "faults": d["faults"],
                "fault_timeline": [],
                "app_url": tb.app_url,
                "targets": d["targets"],
                "load_balancing": d["load_balancing"],
                "deregistration_delay": d["deregistration_delay"],
            },
        )
        # The same for one target (keepalive-race:2@0s): switched before the load starts.
        for step in [f for f in self.pending if _restarts_at_start(f)]:
            self.pending.remove(step)
            tb.set_fault(step.fault, True, step.target)
            meta["testbed"]["fault_timeline"].append(
                [time.time(), f"{step.fault}:{step.target}", True]
            )
        with contextlib.suppress(TimeoutError):
            for i in range(1, len(d["targets"]) + 1):
                tb.wait_for_health("UP", target=i)

    def advance(self, elapsed: float, meta: dict[str, Any], log: Log) -> None:
        """Apply the fault steps due at ``elapsed`` s into the load, recording them in run.json."""
        tb = self.testbed
        assert tb is not None
        while self.pending and self.pending[0].at <= elapsed:
            step = self.pending.pop(0)
            if step.fault in DEPLOYS:
                tb.deploy(DEPLOYS[step.fault])  # in the background: the load goes on
            elif step.fault == "worker-kill":
                tb.kill_worker_soon(step.target or 1)
            else:
                tb.set_fault(step.fault, step.on, step.target)
            name = step.fault if step.target is None else f"{step.fault}:{step.target}"
            meta["testbed"]["fault_timeline"].append([time.time(), name, step.on])
            if tb.capacity() != meta["capacity"]:  # keepalive-race swaps the worker class
                meta["capacity"] = tb.capacity()
                meta["testbed"].setdefault("capacity_changes", []).append(
                    [time.time(), tb.capacity()]
                )
            log(f"{elapsed:5.1f}s fault {name} {'on' if step.on else 'off'}")

    def status(self) -> str | None:
        """The proxy's view of the target, for the progress line."""
        if self.testbed is None:
            return None
        views = self.testbed.target_stats()
        if len(views) == 1:
            st = views[0][1]
            return f"{st.status} ({st.check_status})"
        return " ".join(f"{label.split(':')[0]} {st.status.split()[0]}" for label, st in views)

    def stop(self) -> None:
        if self.testbed is not None:
            self.testbed.stop()


def target_for(
    cfg: Config,
    rundir: RunDir,
    overrides: dict[str, Any],
    faults: list[FaultStep],
    on_event: Callable[[dict[str, Any]], None],
) -> UrlTarget | TestbedTarget:
    if cfg.is_testbed:
        return TestbedTarget(cfg, rundir, overrides, faults, on_event)
    return UrlTarget(cfg)
