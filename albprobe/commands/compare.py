"""`albprobe compare BASELINE NEW`: judge a run (or a tune session) against a baseline."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer

from core.errors import AlbprobeError


@dataclass
class CompareOptions:
    out: Path | None = None
    force: bool = False
    fail_on: list[str] = field(default_factory=list)
    junit: Path | None = None
    json_only: bool = False
    alpha: float = 0.05
    min_latency_effect: float = 0.10
    min_rate_effect: float = 0.005
    correction: str = "holm"
    min_latency_ms: float = 2.0


def _settings(o: CompareOptions):
    from analysis.compare import Settings

    if not 0 < o.alpha < 1:
        raise AlbprobeError(
            f"--alpha {o.alpha:g}: must be between 0 and 1", hint="e.g. --alpha 0.05"
        )
    if o.min_latency_effect < 0 or o.min_rate_effect < 0 or o.min_latency_ms < 0:
        raise AlbprobeError(
            "--min-latency-effect, --min-rate-effect and --min-latency-ms must be >= 0",
            hint="e.g. 0.1, 0.005 and 2",
        )
    if o.correction not in ("holm", "bh"):
        raise AlbprobeError(f"--correction {o.correction!r}: unknown", hint="holm or bh")
    return Settings(
        alpha=o.alpha,
        min_latency_effect=o.min_latency_effect,
        min_rate_effect=o.min_rate_effect,
        correction=o.correction,
        min_latency_ms=o.min_latency_ms,
    )


def execute(baseline: Path, new: Path, o: CompareOptions, *, console=None) -> list[str]:
    """Compare, write compare.json/compare.html (and --junit), print; return the breached
    gates (exit 1 when any). Bad input raises AlbprobeError (exit 2)."""
    from rich.console import Console

    from analysis.compare import compare_runs
    from analysis.compare import tune as tune_cmp
    from analysis.reports import junit
    from analysis.reports.compare_terminal import print_comparison

    settings = _settings(o)
    con = console or Console(highlight=False)
    out = o.out or new / "compare"
    if tune_cmp.is_session(baseline) or tune_cmp.is_session(new):
        if not (tune_cmp.is_session(baseline) and tune_cmp.is_session(new)):
            raise AlbprobeError(
                f"{baseline} and {new}: one is a tune session (tune.json), the other is not",
                hint="compare two run directories or two tune sessions",
            )
        if o.fail_on:
            raise AlbprobeError(
                "--fail-on applies to run directories, not tune sessions", hint="drop --fail-on"
            )
        from analysis.reports import compare_output

        tc = tune_cmp.compare_sessions(baseline, new, settings)
        paths = compare_output.write_tune(tc, out)
        if o.junit:
            junit.write(o.junit, "albprobe.compare", compare_output.tune_cases(tc))
        if o.json_only:
            typer.echo(paths[0].read_text(encoding="utf-8"))
        else:
            from rich.table import Table

            t = Table(title=f"tune sessions: {tc.result}")
            for col in ("figure", "baseline", "new", "change"):
                t.add_column(col)
            for r in tc.rows:
                ch = "-" if r["change"] is None else f"{r['change']:+.1%}"
                t.add_row(r["figure"], _show(r["baseline"]), _show(r["new"]), ch)
            con.print(t)
            for r in tc.reasons:
                con.print(f"- {r}")
        return [] if tc.result != "fail" else ["judgement"]
    from albprobe import parts
    from core import preload

    # the report's imports load while DuckDB reads the runs
    preload.in_background("analysis.reports.compare_output")
    for run in (baseline, new):  # runs whose workers wrote their own parts: bring them in
        if Path(run).is_dir():
            parts.gather(run)
    cmp = compare_runs(baseline, new, settings=settings, force=o.force, fail_on=o.fail_on)
    from analysis.reports import compare_output

    paths = compare_output.write(cmp, out)
    if o.junit:
        paths.append(junit.write(o.junit, "albprobe.compare", compare_output.junit_cases(cmp)))
    if o.json_only:
        typer.echo(paths[0].read_text(encoding="utf-8"))
    else:
        print_comparison(cmp, console=con, outputs=[str(p) for p in paths])
    return [g.name for g in cmp.gates if not g.passed]


def _show(v) -> str:
    if v is None:
        return "-"
    return f"{v:,.4g}" if isinstance(v, float) else str(v)


def gate_error(breached: list[str]) -> None:
    if breached:
        # exit 1 through AlbprobeError: cli.main returns its code (a typer.Exit code is lost with
        # standalone_mode=False)
        raise AlbprobeError(
            f"compare: gate breached: {', '.join(breached)}",
            hint="see the figures above and compare.html",
            exit_code=1,
        )


def register(app: typer.Typer) -> None:
    @app.command("compare")
    def compare(
        baseline: Annotated[Path, typer.Argument(help="Baseline run directory (or tune session).")],
        new: Annotated[Path, typer.Argument(help="New run directory (or tune session).")],
        out: Annotated[
            Path | None, typer.Option("--out", "-o", help="Report folder (default NEW/compare).")
        ] = None,
        force: Annotated[
            bool,
            typer.Option(
                "--force",
                help="Compare runs that differ (endpoints, shape, target, origin) or are partial; the report lists the differences.",
            ),
        ] = False,
        fail_on: Annotated[
            list[str] | None,
            typer.Option(
                "--fail-on",
                help="Exit 1 when breached, e.g. 'p99_regression>10%', 'proxy_5xx_rate_delta>0.005', 'new_cors_failures>0' (repeatable).",
            ),
        ] = None,
        junit: Annotated[
            Path | None, typer.Option("--junit", help="Write the gates as JUnit XML to this file.")
        ] = None,
        json_only: Annotated[
            bool, typer.Option("--json", help="Print compare.json to stdout instead of the tables.")
        ] = False,
        alpha: Annotated[
            float, typer.Option("--alpha", help="Significance level after the correction.")
        ] = 0.05,
        min_latency_effect: Annotated[
            float,
            typer.Option(
                "--min-latency-effect",
                help="Smallest latency change judged a regression (0.10 = +10%).",
            ),
        ] = 0.10,
        min_rate_effect: Annotated[
            float,
            typer.Option(
                "--min-rate-effect",
                help="Smallest failure-rate change judged a regression (0.005 = +0.5 points).",
            ),
        ] = 0.005,
        min_latency_ms: Annotated[
            float,
            typer.Option(
                "--min-latency-ms",
                help="Also require a latency change of this many ms (default 2; 0: no floor), so that +40 % of a 3 ms endpoint is not a regression.",
            ),
        ] = 2.0,
        correction: Annotated[
            str,
            typer.Option(
                "--correction", help="Multiple-testing correction: holm or bh (Benjamini-Hochberg)."
            ),
        ] = "holm",
    ) -> None:
        """Judge NEW against BASELINE per endpoint: regressed / improved / unchanged / inconclusive; pass, marginal or fail."""
        opts = CompareOptions(
            out,
            force,
            fail_on or [],
            junit,
            json_only,
            alpha,
            min_latency_effect,
            min_rate_effect,
            correction,
            min_latency_ms,
        )
        gate_error(execute(baseline, new, opts))
