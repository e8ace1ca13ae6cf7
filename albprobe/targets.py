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
_FAULT_SPEC = re.compile(r"^(?P<name>[a-z-]+)@(?P<on>[\d.]+)s?(?:-(?P<off>[\d.]+)s?)?$")


@dataclass(frozen=True)
class FaultStep:
    at: float
    fault: str
    on: bool


def parse_fault_schedule(specs: list[str], known: tuple[str, ...]) -> list[FaultStep]:
    """'target-down@20s' (on at 20 s) or 'target-down@20s-35s' (on at 20 s, off at 35 s)."""
    steps: list[FaultStep] = []
    for spec in specs:
        m = _FAULT_SPEC.match(spec.strip())
        if not m:
            raise ConfigError(
                f"--fault {spec!r}: expected NAME@START[-END], e.g. target-down@20s-35s"
            )
        name = m["name"]
        if name not in known:
            raise ConfigError(
                f"--fault {spec!r}: unknown fault {name!r}", hint=f"one of: {', '.join(known)}"
            )
        on = float(m["on"])
        steps.append(FaultStep(on, name, True))
        if m["off"]:
            off = float(m["off"])
            if off <= on:
                raise ConfigError(f"--fault {spec!r}: the end must come after the start")
            steps.append(FaultStep(off, name, False))
    return sorted(steps, key=lambda s: s.at)


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

        self.testbed: Testbed | None = Testbed(testbed_config(cfg, rundir, overrides))
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
            testbed={"faults": d["faults"], "fault_timeline": [], "app_url": tb.app_url},
        )
        with contextlib.suppress(TimeoutError):
            tb.wait_for_health("UP")

    def advance(self, elapsed: float, meta: dict[str, Any], log: Log) -> None:
        """Apply the fault steps due at ``elapsed`` s into the load, recording them in run.json."""
        tb = self.testbed
        assert tb is not None
        while self.pending and self.pending[0].at <= elapsed:
            step = self.pending.pop(0)
            tb.set_fault(step.fault, step.on)
            meta["testbed"]["fault_timeline"].append([time.time(), step.fault, step.on])
            if tb.capacity() != meta["capacity"]:  # keepalive-race swaps the worker class
                meta["capacity"] = tb.capacity()
                meta["testbed"].setdefault("capacity_changes", []).append(
                    [time.time(), tb.capacity()]
                )
            log(f"{elapsed:5.1f}s fault {step.fault} {'on' if step.on else 'off'}")

    def status(self) -> str | None:
        """The proxy's view of the target, for the progress line."""
        if self.testbed is None:
            return None
        st = self.testbed.server_status()
        return f"{st.status} ({st.check_status})"

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
