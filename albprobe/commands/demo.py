"""`albprobe demo [--mode MODE]`: cause a failure mode on the testbed, load it, diagnose it."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import typer

from core.errors import ConfigError


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


# After a scheduled outage ends, the target must boot and pass its health checks again (rise 2 at
# a 2 s interval) before errors stop; 30 s leaves room for a busy machine's slow boot.
RECOVERY_S = 30.0


def outage_seconds(sc) -> float:
    """The longest scheduled fault window of a scenario (an unended fault lasts to the end)."""
    from albprobe.runner import parse_fault_schedule
    from testbed.config import FAULTS

    longest, started = 0.0, {}
    for step in parse_fault_schedule(list(sc.faults), FAULTS):
        if step.on:
            started[step.fault] = step.at
        elif step.fault in started:
            longest = max(longest, step.at - started.pop(step.fault))
    for at in started.values():
        longest = max(longest, sc.duration - at)
    return longest


def scenario_config(sc):
    """The Config a scenario runs with: testbed defaults plus the scenario's load and endpoints.

    The abort rule stays on, but its window covers the scenario's own scheduled outage plus the
    recovery: the demo exists to show that outage, and how long it lasts in failures depends on
    how fast this machine restarts the target, not on the target's health.
    """
    from core.config import Capacity, TestbedGroup, config_from_dict

    cfg = config_from_dict({})
    tb = sc.testbed
    capacity = Capacity(
        worker_class=tb.get("worker_class", "sync"),
        workers=tb.get("workers", 2),
        threads=tb.get("threads", 4),
        timeout=tb.get("timeout", 30.0),
        keepalive=tb.get("keepalive", 2.0),
        graceful_timeout=tb.get("graceful_timeout", 5.0),
        max_requests=tb.get("max_requests", 0),
        max_requests_jitter=tb.get("max_requests_jitter", 0),
    )
    group = TestbedGroup(
        **{k: tb[k] for k in ("targets", "load_balancing", "deregistration_delay") if k in tb}
    )
    load = dataclasses.replace(cfg.load, shape=sc.shape, duration=float(sc.duration), **sc.load)
    proxy = dataclasses.replace(
        cfg.proxy, idle_timeout=tb.get("idle_timeout", cfg.proxy.idle_timeout)
    )
    outage = outage_seconds(sc)
    safety = cfg.safety
    if outage:
        safety = dataclasses.replace(
            safety, abort_after=max(safety.abort_after, outage + RECOVERY_S)
        )
    return dataclasses.replace(
        cfg,
        load=load,
        endpoints=sc.endpoints,
        capacity=capacity,
        proxy=proxy,
        safety=safety,
        testbed=group,
    )


# A scenario's testbed keys that have no albprobe.toml counterpart: handed to the testbed as is.
TESTBED_OVERRIDES = (
    "faults",
    "connect_timeout",
    "app_boot_seconds",
    "listener",
    "health_interval",
    "health_timeout",
)


def run_scenario(sc, *, runs_root: Path, console, run_id: str | None = None):
    """Run one scenario end to end; returns (RunResult, analysis Result)."""
    from albprobe.progress import ProgressView
    from albprobe.runner import RunOptions, execute, parse_fault_schedule
    from analysis.pipeline import analyze_run
    from testbed.config import FAULTS

    cfg = scenario_config(sc)
    overrides = {k: v for k, v in sc.testbed.items() if k in TESTBED_OVERRIDES}
    opts = RunOptions(
        config=cfg,
        shape=sc.shape,
        faults=parse_fault_schedule(list(sc.faults), FAULTS),
        runs_root=runs_root,
        run_id=run_id or f"demo-{sc.mode}-{time.strftime('%Y%m%d-%H%M%S')}",
        testbed_overrides=overrides,
    )
    view = ProgressView(console, duration=cfg.load.duration)
    with view:
        result = execute(opts, on_progress=view.update, console_log=view.log)
        view.log("analyzing the run ...")
        analysis = analyze_run(result.rundir.path)
    return result, analysis


def demo(
    mode: str = typer.Option(
        "default",
        help="default, or one of: healthy, target-down, capacity, keepalive-race, health-host, "
        "blocked-port, cors-misconfig, deploy, deploy-stop-first, deploy-short-drain, "
        "deploy-early-register, one-target-bad, worker-kill, worker-recycle, http-redirect.",
    ),
    runs_dir: Path = typer.Option(Path("runs"), help="Where the demo's run directory goes."),
) -> None:
    """Bring the testbed up, cause the failure, load it like browsers, analyze, print the verdict, tear down."""
    from rich.console import Console

    from albprobe.demo_scenarios import MODES, SCENARIOS
    from analysis.reports.terminal import print_summary

    if mode not in SCENARIOS:
        raise ConfigError(f"--mode {mode!r} is not a demo mode", hint=f"one of: {', '.join(MODES)}")
    sc = SCENARIOS[mode]
    console = Console(highlight=False)
    console.print(f"[bold]albprobe demo[/bold] ({mode}): {sc.title}")
    console.print(
        f"  {sc.shape} load for {sc.duration:.0f}s through the testbed's proxy (HAProxy as the ALB)"
        + (f"; faults: {', '.join(sc.faults)}" if sc.faults else "")
    )
    result, analysis = run_scenario(sc, runs_root=runs_dir, console=console)
    console.print(f"run directory: {result.rundir.path} ({result.status})")
    print_summary(analysis.verdict, console=console, outputs=[str(p) for p in analysis.outputs])
    report = result.rundir.path / "report" / "report.html"
    if report.exists():
        console.print(f"HTML report: {report}")
    console.print("testbed stopped; every process it started has ended")
