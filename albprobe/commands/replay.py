"""`albprobe replay`: send an incident's ALB log window again (albprobe/replaying.py)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from core.errors import ConfigError


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)


def replay(
    alb_logs: Annotated[
        str,
        typer.Option(
            "--alb-logs",
            help="The incident's ALB access logs: a folder/file (.log, .log.gz) or s3://bucket/prefix.",
        ),
    ],
    since: Annotated[
        str | None, typer.Option(help="Window start (ISO 8601, UTC if no zone, or epoch s).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Window end (ISO 8601, UTC if no zone, or epoch s).")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="albprobe.toml ([aws] for s3://, [safety], [replay])."),
    ] = None,
    region: Annotated[str | None, typer.Option(help="With s3://: AWS region.")] = None,
    profile: Annotated[str | None, typer.Option(help="With s3://: AWS profile.")] = None,
    target: Annotated[
        str | None,
        typer.Option(help="'testbed' (default) or a base URL on [safety] allowed_hosts."),
    ] = None,
    speed: Annotated[
        float, typer.Option(help="Time compression: 2 = the window in half the time.")
    ] = 1.0,
    scale: Annotated[
        float, typer.Option(help="Requests per second x this, by cloning connections with jitter.")
    ] = 1.0,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and the diagnosis; send nothing.")
    ] = False,
    limit: Annotated[int | None, typer.Option(help="Send at most the first N lines.")] = None,
    paths: Annotated[
        str | None, typer.Option(help="Send only paths matching this regular expression.")
    ] = None,
    allow_writes: Annotated[
        bool,
        typer.Option(
            "--allow-writes",
            help="Send POST/PUT/PATCH/DELETE lines whose path has a [replay.bodies] template.",
        ),
    ] = False,
    workers: Annotated[
        int, typer.Option(help="Locust worker processes (lanes split by client).")
    ] = 0,
    with_cause: Annotated[
        bool,
        typer.Option(
            "--with-cause",
            help="On the testbed: switch on the diagnosed cause (target-down, deploy, ...) at the "
            "second the original shows it.",
        ),
    ] = False,
    gunicorn_timeout: Annotated[
        float | None, typer.Option(help="gunicorn's --timeout (s) for the diagnosis.")
    ] = None,
    runs_dir: Annotated[Path, typer.Option(help="Where run directories are created.")] = Path(
        "runs"
    ),
    run_id: Annotated[str | None, typer.Option(help="Name of the run directory.")] = None,
) -> None:
    """Send an incident's ALB log window again (same arrivals, paths, browsers) and say whether
    its 502s came back."""
    from rich.console import Console

    from albprobe import replaying
    from albprobe.commands.analyze import _gunicorn_timeout, _s3_fetcher
    from albprobe.runner import check_target_allowed
    from analysis.replay_plan import PlanOptions, check_options
    from core.config import load_config, validate_target

    cfg = load_config(config)
    gunicorn_timeout = _gunicorn_timeout(config, gunicorn_timeout)  # as analyze reads it
    if target:
        cfg = dataclasses.replace(cfg, target=validate_target(target))
    check_target_allowed(cfg)
    if workers < 0:
        raise ConfigError(f"--workers must be >= 0, got {workers}")
    opts = PlanOptions(
        speed=speed,
        scale=scale,
        limit=limit,
        paths=paths,
        allow_writes=allow_writes,
        bodies=cfg.replay.bodies,
        secret_params=cfg.replay.secret_params,
        gunicorn_timeout=gunicorn_timeout,
    )
    check_options(opts)
    if with_cause and not cfg.is_testbed:
        raise ConfigError(
            "--with-cause needs the testbed as the target (a fault cannot be switched on a URL)",
            hint="drop --with-cause, or use --target testbed",
        )
    req = replaying.ReplayRequest(
        source=alb_logs,
        since=since,
        until=until,
        plan=opts,
        config=cfg,
        s3_fetch=_s3_fetcher(config, region, profile),
        workers=workers,
        with_cause=with_cause,
        runs_root=runs_dir,
        run_id=run_id,
        gunicorn_timeout=gunicorn_timeout,
    )
    console = Console(highlight=False, soft_wrap=True)
    with replaying.prepare(req) as prep:
        print_plan(console, prep, req)
        replaying.refuse(cfg, prep)
        if dry_run:
            console.print("dry run: nothing sent (drop --dry-run to send it)")
            return
        _send(console, req, prep)


def print_plan(console: Any, prep: Any, req: Any) -> None:
    """The plan in a few lines: what is sent, what is not and why, what was replaced."""
    from rich.markup import escape

    s = prep.summary
    p = console.print
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(s.window_start))
    p(
        f"replay plan: {s.lines:,} log lines of {escape(s.elbs[0] if s.elbs else '?')} from "
        f"{when} UTC, {s.span_s:.1f} s"
    )
    p(
        f"  send {s.sent:,} requests in {s.duration_s:.1f} s (x{s.speed:g} speed, x{s.scale:g} "
        f"scale): peak {s.peak_rps:g}/s at second {s.peak_second:g}, {s.lanes:,} connections, "
        f"{s.peak_lanes:,} at once ({prep.users} users)"
    )
    p("  engines: " + ", ".join(f"{k} {v:,}" for k, v in s.engines.items()))
    tb = prep.testbed
    if tb is not None:
        c = tb.capacity
        threads = f" x {c.threads} threads" if c.worker_class == "gthread" else ""
        p(
            f"  testbed: {tb.testbed.targets} target(s) x gunicorn {c.workers} {c.worker_class} "
            f"workers{threads}, {escape(tb.why)}"
        )
    a = s.actions
    if a.get("skip-write"):
        top = ", ".join(
            f"{w['method']} {escape(w['path'])} x{w['lines']}" for w in s.writes_skipped[:5]
        )
        p(
            f"  not sent: {a['skip-write']:,} writes (ALB logs carry no bodies; --allow-writes and a "
            f"{escape('[replay.bodies]')} template send a path's): {top}"
        )
    nf = a.get("not-forwarded", 0)
    if nf or s.malformed:
        p(f"  not sent: {nf:,} requests the ALB never forwarded, {s.malformed:,} malformed lines:")
        for r in s.not_forwarded[:10]:
            p(f"    line {r['line']}: {r['method']} {escape(r['path'])} -> {r['elb_status']}")
        for ex in s.malformed_examples[:3]:
            p(f"    malformed: {escape(ex[:120])}")
    for key, why in (("filtered", "--paths"), ("beyond-limit", "--limit")):
        if a.get(key):
            p(f"  not sent: {a[key]:,} lines left out by {why}")
    if s.redacted:
        p(
            f"  secret-looking query values replaced with {s.replacement!r}: "
            + ", ".join(f"{k} ({v:,} lines)" for k, v in s.redacted.items())
        )
    o = s.original
    p(
        f"  the original: {o['5xx']:,} 5xx ({o['502']:,} 502), {o['alb_5xx']:,} generated by the "
        f"ALB, {o['target_5xx']:,} by the target"
    )
    d = prep.diagnosis
    p(
        f"  diagnosis: at fault {d.at_fault}; "
        + (", ".join(f"{c['id']} {c['strength']:.2f}" for c in d.causes) or "no cause")
    )
    for note in d.not_from_traffic:
        p(f"  note: {escape(note)}")
    if d.faults and not req.with_cause:
        p(f"  the replay that adds it: {escape(_command(req))} --with-cause")


def _command(req: Any) -> str:
    parts = ["albprobe replay", "--alb-logs", req.source]
    for flag, v in (("--since", req.since), ("--until", req.until)):
        if v:
            parts += [flag, v]
    if req.plan.speed != 1:
        parts += ["--speed", f"{req.plan.speed:g}"]
    if req.plan.scale != 1:
        parts += ["--scale", f"{req.plan.scale:g}"]
    return " ".join(parts)


def _send(console: Any, req: Any, prep: Any) -> None:
    from albprobe import replaying
    from albprobe.progress import ProgressView
    from albprobe.runner import execute, replay_started
    from analysis.pipeline import analyze_run
    from analysis.reports.terminal import print_summary

    opts = replaying.run_options(req, prep)
    if req.with_cause and not opts.faults:
        console.print(
            "  --with-cause: the diagnosis names no cause the testbed can add; the traffic alone"
        )
    if opts.faults:
        console.print(
            "  with the cause: "
            + ", ".join(
                f"{f.fault}{f':{f.target}' if f.target else ''}@{f.at:g}s{'' if f.on else ' off'}"
                for f in opts.faults
            )
        )
    view = ProgressView(console, duration=opts.config.load.duration)
    with view:
        result = execute(opts, on_progress=view.update, console_log=view.log)
    # the plan's offset 0 as Locust sent it (moved when its start-up outlasted the lead)
    start = replay_started(result.rundir) or opts.replay.start
    replaying.keep_plan(result.rundir.path, prep, req, start)
    console.print(
        f"run directory: {result.rundir.path}  status: {result.status}"
        + (f" ({result.status_reason})" if result.status_reason else "")
    )
    if result.rundir.parts("requests"):
        res = analyze_run(result.rundir.path)
        print_summary(
            res.verdict,
            console=console,
            extra_tables={k: v for k, v in res.extra_tables.items() if "per second" not in k},
            outputs=[str(p) for p in res.outputs],
        )
        if res.replay:
            r = res.replay["reproduced"]
            console.print(f"reproduced: {r['answer']} - {r['reason']}")
    if result.status == "aborted":
        raise typer.Exit(3)
    if result.status == "partial":
        raise typer.Exit(130 if "Ctrl-C" in (result.status_reason or "") else 1)
