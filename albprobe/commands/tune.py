"""`albprobe tune`: find the knee under an SLO, fit the scalability curve, recommend gunicorn
workers x threads, and (on the testbed) prove the recommendation. Method: docs/tuning.md."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import typer

from core.config import Config
from core.errors import ConfigError


def register(app: typer.Typer) -> None:
    app.command("tune")(tune)


def _config(
    config: Path | None,
    target: str | None,
    endpoint: list[str],
    worker_class: str | None,
    gunicorn_workers: int | None,
    threads: int | None,
) -> Config:
    """The config file with the command line's target, endpoints and (testbed) capacity."""
    from core.config import Endpoint, load_config, validate_target

    cfg = load_config(config)
    if target:
        cfg = dataclasses.replace(cfg, target=validate_target(target))
    if endpoint:
        eps = []
        for i, spec in enumerate(endpoint):
            if not spec.startswith("/"):
                raise ConfigError(f"--endpoint {spec!r}: a path starting with '/'")
            eps.append(Endpoint(name=f"tune-{i + 1}", path=spec))
        cfg = dataclasses.replace(cfg, endpoints=tuple(eps))
    cap = cfg.capacity
    if worker_class is not None:
        if worker_class not in ("sync", "gthread"):
            raise ConfigError(f"--worker-class {worker_class!r}: sync or gthread")
        cap = dataclasses.replace(cap, worker_class=worker_class)
    if gunicorn_workers is not None:
        if gunicorn_workers < 1:
            raise ConfigError("--gunicorn-workers must be >= 1")
        cap = dataclasses.replace(cap, workers=gunicorn_workers)
    if threads is not None:
        if threads < 1:
            raise ConfigError("--threads must be >= 1")
        cap = dataclasses.replace(cap, threads=threads)
    return dataclasses.replace(cfg, capacity=cap)


def tune(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="albprobe.toml (default: ./albprobe.toml or testbed defaults)."
    ),
    target: str | None = typer.Option(
        None, help="'testbed' or the API's base URL (must be on [safety] allowed_hosts)."
    ),
    slo: list[str] = typer.Option(
        [],
        "--slo",
        help="What must hold at a step, like --fail-on: 'p99<800ms', '5xx_rate<0.01' "
        "(repeatable; default p99<1s and 5xx_rate<0.01).",
    ),
    endpoint: list[str] = typer.Option(
        [], "--endpoint", help="GET path(s) to load instead of the config's endpoints."
    ),
    start_rate: float = typer.Option(5.0, help="First step's arrival rate, req/s."),
    growth: float = typer.Option(1.5, help="Each step multiplies the rate by this until a break."),
    max_rate: float | None = typer.Option(
        None, help="Highest rate tried (default safety.max_rps)."
    ),
    resolution: float = typer.Option(
        0.1, help="Bisect until the holding and breaking rates are this close (relative)."
    ),
    step: str = typer.Option("10s", "--step", help="Duration of each step."),
    steps: int = typer.Option(8, "--steps", help="Step budget per pass."),
    target_rps: float | None = typer.Option(
        None, help="Throughput to size for (default: the lowest rate that broke the SLO)."
    ),
    headroom: float = typer.Option(0.3, help="Spare slots on top of the target's need."),
    cpu_share: float | None = typer.Option(
        None, help="Share of the service time spent on CPU (measured on the testbed)."
    ),
    worker_memory: float | None = typer.Option(
        None, help="Memory per gunicorn worker in MB (measured on the testbed)."
    ),
    memory_limit: float | None = typer.Option(None, help="Container/host memory limit in MB."),
    ssm_stats: bool = typer.Option(
        False,
        "--ssm-stats",
        help="Against a URL: read the API container's memory with `docker stats` via SSM Run "
        "Command (opt-in, read-only; IAM: docs/iam-policy-ssm-logs.json).",
    ),
    prove: bool = typer.Option(
        True, "--prove/--no-prove", help="Testbed: rerun the steps at the recommended setting."
    ),
    worker_class: str | None = typer.Option(None, help="Testbed gunicorn worker class."),
    gunicorn_workers: int | None = typer.Option(None, help="Testbed gunicorn workers."),
    threads: int | None = typer.Option(None, help="Testbed gunicorn threads (gthread)."),
    runs_dir: Path = typer.Option(Path("runs"), help="Where the tune directory is created."),
    out: Path | None = typer.Option(None, help="The tune directory (default runs/tune-<time>)."),
    fail_on: list[str] = typer.Option(
        [],
        "--fail-on",
        help="CI gate on the tuning figures, e.g. 'knee_rps<200' (exit 1 when true).",
    ),
) -> None:
    """Open-model steps until the SLO breaks: the knee, the USL fit, gunicorn workers x threads, the proof."""
    from rich.console import Console

    from albprobe.tuning import TuneOptions, default_out
    from albprobe.tuning import tune as run_tune
    from analysis.capacity import parse_gates, parse_slo
    from analysis.reports import thresholds as th
    from analysis.reports.capacity import capacity_png, render_html
    from core.config import parse_duration

    # Everything the user typed is checked before any load is sent.
    slos = parse_slo(slo)
    gates = parse_gates(fail_on)
    cfg = _config(config, target, endpoint, worker_class, gunicorn_workers, threads)
    folder = out or default_out(runs_dir)
    if folder.exists() and any(folder.iterdir()):
        raise ConfigError(f"--out {folder} already exists and is not empty", hint="pick another")
    opts = TuneOptions(
        config=cfg,
        slo=slos,
        out=folder,
        start_rate=start_rate,
        growth=growth,
        max_rate=max_rate,
        resolution=resolution,
        step_duration=parse_duration(step, key="--step"),
        budget=steps,
        target_rps=target_rps,
        headroom=headroom,
        cpu_share=cpu_share,
        worker_memory_mb=worker_memory,
        memory_limit_mb=memory_limit,
        ssm_stats=ssm_stats,
        prove=prove,
    )
    console = Console(highlight=False)
    result = run_tune(opts, log=lambda line: console.print(line, soft_wrap=True))
    breaches = th.evaluate(gates, result.gate_figures())
    doc = result.to_json() | {"fail_on": breaches}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tune.json").write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
    png = capacity_png(result)
    (folder / "capacity.png").write_bytes(png)
    (folder / "report.html").write_text(render_html(result, png), encoding="utf-8")
    for line in result.statements:
        if line:
            console.print(line, soft_wrap=True)
    rec = result.recommendation
    if rec is not None:
        console.print(
            f"recommendation: gunicorn {rec.gunicorn_args} "
            f"({rec.capacity_rps:.0f} req/s capacity for a {rec.target_rps:g} req/s target)",
            soft_wrap=True,
        )
    proof = result.proof_step
    if result.after is not None and proof is not None:
        a = result.after.knee
        console.print(
            f"before: knee {result.before.knee.rps or 0:.1f} req/s | after: knee "
            f"{'' if a.bounded else '>= '}{a.rps or 0:.1f} req/s; at {proof.offered_rps:g} req/s "
            f"p99 {proof.p99_ms or 0:.0f} ms, 5xx {proof.rate_5xx or 0:.2%}",
            soft_wrap=True,
        )
    fit = result.before.fit
    console.print(
        f"USL: σ {fit.sigma:.4f}, κ {fit.kappa:.5f}, R² {fit.r2:.3f}"
        if fit.supported
        else f"USL: no fit ({fit.reason})"
    )
    for b in breaches:
        if b["breached"]:
            console.print(f"--fail-on {b['threshold']}: breached (measured {b['value']})")
    console.print(
        f"report: {folder / 'report.html'}  figures: {folder / 'tune.json'}", soft_wrap=True
    )
    if any("tuning stopped early" in s for s in result.statements):
        raise typer.Exit(130)
    if (
        any(b["breached"] for b in breaches)
        or result.before.knee.step is None
        or result.proof_holds is False
    ):
        raise typer.Exit(1)
