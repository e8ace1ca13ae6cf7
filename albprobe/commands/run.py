"""`albprobe run`: a load run through the proxy, recorded into a run directory."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from core.errors import ConfigError


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def apply_overrides(
    cfg,
    *,
    target: str | None,
    shape: str | None,
    duration: str | None,
    users: int | None,
    rate: float | None,
    workers: int | None,
):
    """CLI options override the config file (validated by the same rules)."""
    from core.config import parse_duration, validate_target
    from core.shapes_catalog import SHAPES

    if target:
        cfg = dataclasses.replace(cfg, target=validate_target(target))
    load = cfg.load
    if shape:
        if shape not in SHAPES:
            raise ConfigError(
                f"--shape {shape!r} is not a known shape", hint=f"one of {', '.join(SHAPES)}"
            )
        load = dataclasses.replace(load, shape=shape)
    if duration:
        load = dataclasses.replace(load, duration=parse_duration(duration, key="--duration"))
    if users is not None:
        if users < 1:
            raise ConfigError(f"--users must be >= 1, got {users}")
        load = dataclasses.replace(load, users=users, max_vus=max(load.max_vus, users))
    if rate is not None:
        if rate <= 0:
            raise ConfigError(f"--rate must be > 0, got {rate}")
        load = dataclasses.replace(load, rate=rate, end_rate=rate)
    if workers is not None:
        if workers < 0:
            raise ConfigError(f"--workers must be >= 0, got {workers}")
        load = dataclasses.replace(load, workers=workers)
    return dataclasses.replace(cfg, load=load)


def run(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="albprobe.toml (default: ./albprobe.toml or testbed defaults)."
    ),
    target: str | None = typer.Option(
        None, help="'testbed' or the API's base URL (must be on [safety] allowed_hosts)."
    ),
    shape: str | None = typer.Option(
        None, help="users, step, spike, soak, idle-gap, constant-rate, ramping-rate."
    ),
    duration: str | None = typer.Option(None, help="Run length, e.g. 60s or 2m."),
    users: int | None = typer.Option(
        None, help="Users (closed shapes) / virtual-user pool (open model)."
    ),
    rate: float | None = typer.Option(None, help="Arrival rate, iterations/s (constant-rate)."),
    workers: int | None = typer.Option(None, help="Locust worker processes (0 = one process)."),
    fault: list[str] = typer.Option(
        [],
        "--fault",
        help="Testbed fault schedule (repeatable), e.g. target-down@20s, hang@10s-30s, "
        "target-down:2@5s (target 2 only), deploy@10s, deploy-stop-first@10s, "
        "deploy-early-register@10s, worker-kill@8s.",
    ),
    web_ui: bool = typer.Option(
        False, "--web-ui", help="Run with Locust's web UI (starts automatically)."
    ),
    listener: str = typer.Option(
        "http",
        "--listener",
        help="Testbed listener the load calls: http, https (port 443's role, verified against the "
        "testbed CA) or http-redirect (port 80's role: the ALB's 301 to HTTPS).",
    ),
    runs_dir: Path = typer.Option(Path("runs"), help="Where run directories are created."),
    run_id: str | None = typer.Option(
        None, help="Name of the run directory (default: time + shape)."
    ),
    analyze: bool = typer.Option(
        True, "--analyze/--no-analyze", help="Analyze the run when it ends."
    ),
    ssm_logs: bool = typer.Option(
        False,
        "--ssm-logs",
        help="After a run against a URL: fetch each instance target's `docker logs` via SSM Run "
        "Command (opt-in; IAM: docs/iam-policy-ssm-logs.json).",
    ),
    alb_access_logs: bool = typer.Option(
        False,
        "--alb-access-logs",
        help="After a run against a URL: fetch the ALB's access-log files of the run window from "
        "S3 into logs/alb/ (opt-in; files arrive every 5 minutes, so the last ones may be missing).",
    ),
) -> None:
    """Load the API like browsers do (preflight + request from the front origin), record every request."""
    from rich.console import Console

    from albprobe.progress import ProgressView
    from albprobe.runner import RunOptions, execute, parse_fault_schedule
    from core.config import load_config
    from testbed.config import FAULTS, LISTENERS

    if listener not in LISTENERS:
        raise ConfigError(
            f"--listener: unknown listener {listener!r}", hint=f"one of: {', '.join(LISTENERS)}"
        )
    cfg = apply_overrides(
        load_config(config),
        target=target,
        shape=shape,
        duration=duration,
        users=users,
        rate=rate,
        workers=workers,
    )
    if listener != "http" and not cfg.is_testbed:
        raise ConfigError(
            f"--listener {listener}: only the testbed has listeners to choose",
            hint="drop --listener, and give the URL's scheme in --target instead",
        )
    opts = RunOptions(
        config=cfg,
        shape=cfg.load.shape,
        workers=cfg.load.workers,
        web_ui=web_ui or cfg.load.web_ui,
        faults=parse_fault_schedule(fault, FAULTS),
        runs_root=runs_dir,
        run_id=run_id,
        ssm_logs=ssm_logs,
        collect=frozenset({"alb-access-logs"} if alb_access_logs else ()),
        testbed_overrides={"listener": listener} if listener != "http" else {},
    )
    console = Console(highlight=False)
    view = ProgressView(console, duration=cfg.load.duration)
    with view:
        result = execute(opts, on_progress=view.update, console_log=view.log)
    console.print(
        f"run directory: {result.rundir.path}  status: {result.status}"
        + (f" ({result.status_reason})" if result.status_reason else "")
    )
    if analyze and result.rundir.parts("requests"):
        from analysis.pipeline import analyze_run
        from analysis.reports.terminal import print_summary

        analysis = analyze_run(result.rundir.path)
        print_summary(analysis.verdict, console=console, outputs=[str(p) for p in analysis.outputs])
    if result.status == "aborted":
        raise typer.Exit(3)
    if result.status == "partial":
        raise typer.Exit(130 if "Ctrl-C" in (result.status_reason or "") else 1)
