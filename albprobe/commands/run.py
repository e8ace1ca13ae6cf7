"""`albprobe run`: a load run through the proxy, recorded into a run directory."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from core.errors import ConfigError

if TYPE_CHECKING:
    from core.config import Config


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
    worker_parts: str | None = None,
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
    if worker_parts:
        load = dataclasses.replace(load, worker_parts=worker_parts)
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
    worker_parts: str | None = typer.Option(
        None,
        "--worker-parts",
        help="With --workers: each worker writes its own Parquet parts under this folder or "
        "s3://bucket/prefix instead of shipping its rows to the master (docs/distributed.md).",
    ),
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
    baseline: Path | None = typer.Option(
        None,
        "--baseline",
        help="After the run: compare it against this run directory (`albprobe compare`); the "
        "report goes to <run>/compare/.",
    ),
    fail_on: list[str] = typer.Option(
        [],
        "--fail-on",
        help="Exit 1 when breached: the analysis' thresholds ('5xx_rate>0.01', 'p99>800') and, "
        "with --baseline, the comparison's ('p99_regression>10%', 'new_cors_failures>0').",
    ),
    junit: Path | None = typer.Option(
        None, "--junit", help="Write the gates as JUnit XML to this file."
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

    analyze_gates, compare_gates = split_fail_on(fail_on, baseline)
    base_meta = None
    if baseline is not None:
        from analysis.compare.data import read_meta

        base_meta = read_meta(baseline)  # a wrong --baseline fails now, not after the run
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
        worker_parts=worker_parts,
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
    if base_meta is not None:
        refuse_incomparable(baseline, base_meta, cfg, opts.shape)
    console = Console(highlight=False)
    view = ProgressView(console, duration=cfg.load.duration)
    with view:
        result = execute(opts, on_progress=view.update, console_log=view.log)
    console.print(
        f"run directory: {result.rundir.path}  status: {result.status}"
        + (f" ({result.status_reason})" if result.status_reason else "")
    )
    breached: list[str] = []
    cases = []
    if analyze and result.rundir.parts("requests"):
        from analysis.pipeline import analyze_run
        from analysis.reports import compare_output
        from analysis.reports.terminal import print_summary

        analysis = analyze_run(result.rundir.path, fail_on=analyze_gates)
        print_summary(
            analysis.verdict,
            console=console,
            breaches=analysis.breaches,
            outputs=[str(p) for p in analysis.outputs],
        )
        breached += [b["threshold"] for b in analysis.breaches if b["breached"]]
        cases += compare_output.gate_cases(analysis.breaches, analysis.verdict.headline)
        if baseline is not None and result.status == "complete":
            breached += _compare(baseline, result.rundir.path, compare_gates, console, cases)
    if junit is not None:
        from analysis.reports import junit as junit_xml

        junit_xml.write(junit, "albprobe.run", cases)
    if result.status == "aborted":
        raise typer.Exit(3)
    if result.status == "partial":
        raise typer.Exit(130 if "Ctrl-C" in (result.status_reason or "") else 1)
    if breached:
        raise ConfigError(
            _breach_message(breached, baseline),
            hint=f"run directory {result.rundir.path}"
            + (
                f"; comparison {result.rundir.path / 'compare' / 'compare.html'}"
                if baseline
                else ""
            ),
            exit_code=1,
        )


def refuse_incomparable(baseline: Path, base_meta: dict, cfg: Config, shape: str) -> None:
    """Before any load: a run that `compare` would refuse against --baseline (other endpoints,
    shape, shape parameters, target or origin) is refused now, not after its whole duration."""
    from albprobe.runner import planned_record
    from analysis.compare.comparable import differences, endpoints_of

    if not endpoints_of(base_meta, []):
        return  # a run.json without its config: compare reads its endpoints from its rows, later
    target = {"kind": "testbed"} if cfg.is_testbed else {"kind": "url", "url": cfg.target}
    # as run.json will hold it (JSON: tuples become lists)
    planned = json.loads(json.dumps(planned_record(cfg, shape) | {"target": target}, default=str))
    diffs, _ = differences(base_meta, planned, [], [])
    if diffs:
        raise ConfigError(
            f"--baseline {baseline}: this run would not be comparable with it: {'; '.join(diffs)}",
            hint="run with the baseline's config and options (its run.json records them), or drop "
            "--baseline and use `albprobe compare --force` after the run",
        )


# the comparison's own judgement: a gate of every --baseline run, asked for or not
_JUDGEMENT = "compare judgement"


def _breach_message(breached: list[str], baseline: Path | None) -> str:
    """The one-line error of a breached run: the comparison's judgement (no --fail-on needed)
    and the user's --fail-on thresholds, each named as what it is."""
    parts = []
    if _JUDGEMENT in breached:
        parts.append(f"the comparison with the baseline {baseline} failed (overall: fail)")
    asked = [b for b in breached if b != _JUDGEMENT]
    if asked:
        parts.append(f"--fail-on breached: {', '.join(asked)}")
    return "; ".join(parts)


def split_fail_on(exprs: list[str], baseline: Path | None) -> tuple[list[str], list[str]]:
    """--fail-on of `run`: the analysis' thresholds and (with --baseline) the comparison's,
    told apart by the metric name; each parsed now, so a typo fails before the run."""
    if not exprs:
        return [], []  # and no import of the comparison's statistics (a second of CPU)
    from analysis.compare import gates
    from analysis.reports import thresholds as th

    analyze_gates, compare_gates = [], []
    for e in exprs:
        name = e.split(">")[0].split("<")[0].split("=")[0].strip()
        if name in gates.METRICS:
            if baseline is None:
                raise ConfigError(
                    f"--fail-on {e!r}: a comparison threshold needs --baseline",
                    hint="add --baseline runs/<id> or use an analysis threshold like '5xx_rate>0.01'",
                )
            gates.parse([e])
            compare_gates.append(e)
        elif name in th.METRICS:
            th.parse(e)
            analyze_gates.append(e)
        else:
            raise ConfigError(
                f"--fail-on {e!r}: cannot read this threshold",
                hint=f"write METRIC OP VALUE; metrics: {', '.join(th.METRICS)}"
                + (f"; with --baseline also {', '.join(gates.METRICS)}" if baseline else ""),
            )
    return analyze_gates, compare_gates


def _compare(baseline: Path, new: Path, fail_on: list[str], console, cases: list) -> list[str]:
    """`albprobe compare BASELINE <this run>`: its tables, report and gates."""
    from analysis.compare import compare_runs
    from analysis.reports import compare_output
    from analysis.reports.compare_terminal import print_comparison

    cmp = compare_runs(baseline, new, fail_on=fail_on)
    paths = compare_output.write(cmp, new / "compare")
    print_comparison(cmp, console=console, outputs=[str(p) for p in paths])
    cases += [
        dataclasses.replace(c, name=f"compare: {c.name}") for c in compare_output.junit_cases(cmp)
    ]
    # the judgement gate's name is _JUDGEMENT
    return [f"compare {g.name}" for g in cmp.gates if not g.passed]
