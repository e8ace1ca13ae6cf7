"""`albprobe analyze`: the verdict for a run directory, or for ALB access logs alone."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from core.errors import AlbprobeError


def register(app: typer.Typer) -> None:
    @app.command("analyze")
    def analyze(
        run_dir: Annotated[
            Path | None, typer.Argument(help="Run directory written by `albprobe run`.")
        ] = None,
        alb_logs: Annotated[
            str | None,
            typer.Option(
                "--alb-logs",
                help="ALB access logs instead of a run: a folder/file (.log, .log.gz) or s3://bucket/prefix.",
            ),
        ] = None,
        since: Annotated[
            str | None,
            typer.Option(
                "--since", help="With --alb-logs: start (ISO 8601, UTC if no zone, or epoch s)."
            ),
        ] = None,
        until: Annotated[
            str | None,
            typer.Option(
                "--until", help="With --alb-logs: end (ISO 8601, UTC if no zone, or epoch s)."
            ),
        ] = None,
        out: Annotated[
            Path | None,
            typer.Option(
                "--out", "-o", help="Report folder (default <run>/report or ./alb-report)."
            ),
        ] = None,
        fail_on: Annotated[
            list[str] | None,
            typer.Option(
                "--fail-on",
                help="Exit 1 when breached, e.g. '5xx_rate>0.01', 'p99>800' (ms), repeatable.",
            ),
        ] = None,
        json_only: Annotated[
            bool,
            typer.Option("--json", help="Print summary.json to stdout instead of the summary."),
        ] = False,
        config: Annotated[
            Path | None,
            typer.Option(
                "--config",
                "-c",
                help="albprobe.toml: its [aws] profile/region/endpoint read s3://.",
            ),
        ] = None,
        region: Annotated[
            str | None,
            typer.Option("--region", help="With s3://: AWS region (default: config, env)."),
        ] = None,
        profile: Annotated[
            str | None,
            typer.Option("--profile", help="With s3://: AWS profile of the shared config."),
        ] = None,
        junit: Annotated[
            Path | None,
            typer.Option("--junit", help="Write the --fail-on gates as JUnit XML to this file."),
        ] = None,
        gunicorn_timeout: Annotated[
            float | None,
            typer.Option(
                "--gunicorn-timeout",
                help="With --alb-logs: gunicorn's --timeout in seconds (default: [capacity] timeout, "
                "else 30), to tell a worker killed at the timeout from a keep-alive race.",
            ),
        ] = None,
    ) -> None:
        """Correlate failures with health and capacity; say whether the proxy or CORS is at fault."""
        from analysis import pipeline
        from core import preload

        if (run_dir is None) == (alb_logs is None):
            raise AlbprobeError(
                "analyze needs either a run directory or --alb-logs (not both)",
                hint="albprobe analyze runs/<id>  or  albprobe analyze --alb-logs ./logs --since ... --until ...",
            )
        if run_dir is not None and (since or until):
            raise AlbprobeError(
                "--since/--until only apply to --alb-logs", hint="drop them for a run directory"
            )
        # the report's imports load while DuckDB reads the logs or the run
        preload.in_background("analysis.reports.html")
        if alb_logs is not None:
            res = pipeline.analyze_alb_logs(
                alb_logs,
                since=since,
                until=until,
                out=out,
                fail_on=fail_on,
                s3_fetch=_s3_fetcher(config, region, profile),
                gunicorn_timeout=_gunicorn_timeout(config, gunicorn_timeout),
            )
        else:
            assert run_dir is not None
            _gather_worker_parts(run_dir, config, region, profile)
            res = pipeline.analyze_run(run_dir, out=out, fail_on=fail_on or [])
        if junit is not None:
            from analysis.reports import compare_output
            from analysis.reports import junit as junit_xml

            junit_xml.write(
                junit,
                "albprobe.analyze",
                compare_output.gate_cases(res.breaches, res.verdict.headline),
            )
        if json_only:
            typer.echo(res.outputs[0].read_text(encoding="utf-8"))
        else:
            from analysis.reports.terminal import print_summary

            print_summary(
                res.verdict,
                breaches=res.breaches,
                # long time series stay in report.html / summary.json
                extra_tables={
                    k: v
                    for k, v in res.extra_tables.items()
                    if "minute" not in k and "per second" not in k
                },
                outputs=[str(p) for p in res.outputs],
            )
        if res.exit_code:
            hits = [
                f"{b['threshold']} (measured {b['value']:.4g})"
                for b in res.breaches
                if b["breached"]
            ]
            # An AlbprobeError with exit code 1 (cli.main returns it; a typer.Exit code is lost
            # with standalone_mode=False).
            raise AlbprobeError(
                f"--fail-on breached: {', '.join(hits)}",
                hint=f"verdict: {res.verdict.at_fault}",
                exit_code=1,
            )


def _gather_worker_parts(
    run_dir: Path, config: Path | None, region: str | None, profile: str | None
) -> None:
    """A run whose workers wrote their own parts (parts.json): the parts not in it yet are
    brought in (s3:// downloaded with the config's [aws] settings), so it reads as one run."""
    from albprobe import parts
    from core import worker_parts as wp
    from core.rundir import RunDir

    if not (Path(run_dir) / wp.MANIFEST).exists():
        return
    pending = wp.not_gathered(RunDir(Path(run_dir)))
    if not pending:
        return
    fetch = None
    if any(wp.is_s3(u) for u in pending):
        from core.config import load_config

        fetch = parts.fetcher(load_config(config).aws, region=region, profile=profile)
    parts.gather(run_dir, fetch)


def _s3_fetcher(config: Path | None, region: str | None, profile: str | None):
    """The AWS access-log collector with the same profile/region/endpoint rules as `check`."""

    def fetch(source: str, since: float, until: float, dest: Path) -> list[Path]:
        from core.config import load_config
        from probes.aws.collectors import download_access_logs
        from probes.aws.session import AwsClients

        aws = load_config(config).aws
        clients = AwsClients.from_config(aws, region=region, profile=profile)
        # [aws] load_balancer narrows an s3:// prefix to that balancer's objects; one diagnosis
        # (or replay) is of one balancer
        return download_access_logs(
            clients, source, since, until, dest, load_balancer=aws.load_balancer, one_balancer=True
        )

    return fetch


def _gunicorn_timeout(config: Path | None, flag: float | None) -> float | None:
    """The flag, else the config's [capacity] timeout when a config file names one."""
    from core.config import load_config

    if flag is not None:
        if flag <= 0:
            raise AlbprobeError(
                f"--gunicorn-timeout {flag:g}: must be a positive number of seconds"
            )
        return flag
    cfg = load_config(config)
    return cfg.capacity.timeout if cfg.source_path else None
