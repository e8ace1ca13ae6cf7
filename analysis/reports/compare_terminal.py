"""The terminal view of a comparison (rich): the overall answer, one table of judged figures
per endpoint, what changed in the verdict, the gates."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from analysis.compare import Comparison
from analysis.compare.judge import Figure

OVERALL_STYLE = {"pass": "green", "marginal": "yellow", "fail": "red"}
JUDGEMENT_STYLE = {
    "regressed": "bold red",
    "improved": "green",
    "unchanged": "white",
    "inconclusive": "yellow",
}


def value(f: Figure, v: float | None) -> str:
    if v is None:
        return "-"
    if f.unit == "ms":
        return f"{v:,.1f} ms"
    if f.unit == "rate":
        return f"{v:.2%}"
    return f"{v:,.0f}"


def change(f: Figure) -> str:
    if f.effect is None:
        return "-"
    if f.unit == "ms":
        s = f"{f.effect:+.1%}"
        if f.effect_ci:
            s += f" [{f.effect_ci[0]:+.0%}, {f.effect_ci[1]:+.0%}]"
        return s
    if f.unit == "rate":
        s = f"{f.effect * 100:+.2f} pt"
        if f.effect_ci:
            s += f" [{f.effect_ci[0] * 100:+.2f}, {f.effect_ci[1] * 100:+.2f}]"
        return s
    return f"{f.effect:+,.0f}"


def print_comparison(
    cmp: Comparison, *, console: Console | None = None, outputs: list[str] | None = None
) -> None:
    con = console or Console()
    o = cmp.overall
    body = f"{cmp.base.run_id} (baseline) -> {cmp.new.run_id} (new)"
    if o.reasons:
        body += "\n" + "\n".join(f"- {r}" for r in o.reasons[:8])
    con.print(
        Panel(escape(body), title=f"compare: {o.result}", border_style=OVERALL_STYLE[o.result])
    )
    if cmp.differences:
        con.print(
            Panel(
                escape("\n".join(f"- {d}" for d in cmp.differences)),
                title="compared with --force despite",
                border_style="yellow",
            )
        )
    scopes = dict.fromkeys(f.scope for f in cmp.figures)
    for scope in scopes:
        t = Table(title=f"endpoint {scope}" if scope != "(all)" else "all endpoints")
        for col in ("figure", "baseline", "new", "change [95% CI]", "p (adj.)", "judgement"):
            t.add_column(col, justify="left" if col in ("figure", "judgement") else "right")
        for f in cmp.scope(scope):
            if f.unit != "ms" and not f.base and not f.new and f.judgement == "unchanged":
                continue  # none in either run: a row of zeros says nothing
            t.add_row(
                f.name,
                value(f, f.base),
                value(f, f.new),
                change(f),
                "-" if f.p_adj is None else f"{f.p_adj:.2g}",
                f"[{JUDGEMENT_STYLE[f.judgement]}]{f.judgement}[/]",
            )
        con.print(t)
    tp = cmp.throughput
    if tp:
        t = Table(title="throughput")
        for col in ("run", "requests", "achieved req/s", "scheduled", "dropped"):
            t.add_column(col, justify="left" if col == "run" else "right")
        for side in ("baseline", "new"):
            d = tp[side]
            rps = d.get("achieved_rps")
            t.add_row(
                side,
                f"{d['requests']:,}",
                "-" if rps is None else f"{rps:,.1f}",
                str(d.get("scheduled", "-")),
                str(d.get("dropped", "-")),
            )
        con.print(t)
    if cmp.targets:
        con.print(_targets_table(cmp.targets))
    if cmp.verdicts:
        lines = [
            f"baseline: at fault {cmp.verdicts['baseline']['at_fault']} - {cmp.verdicts['baseline']['headline']}",
            f"new:      at fault {cmp.verdicts['new']['at_fault']} - {cmp.verdicts['new']['headline']}",
        ]
        lines += [f"- {c}" for c in cmp.changes] or ["- no change in the verdict or its causes"]
        con.print(Panel(escape("\n".join(lines)), title="verdicts"))
    for n in cmp.notes:
        con.print(f"note: {escape(n)}")
    for g in cmp.gates:
        mark = "[green]ok[/]" if g.passed else "[bold red]BREACHED[/]"
        con.print(f"gate {escape(g.name)}: {mark} - {escape(g.message)}")
    for p in outputs or []:
        con.print(f"wrote {escape(p)}")


def _targets_table(rows: list[dict[str, Any]]) -> Table:
    """Baseline -> new in each cell, so that the target's name keeps its width on a narrow
    terminal (one column per figure and run cut the names to '127.0.0…')."""
    t = Table(title="targets (baseline -> new)")
    t.add_column("target", no_wrap=True)
    for col in ("share", "p95", "5xx"):
        t.add_column(col, justify="right")

    def pair(b: Any, n: Any, fmt: str) -> str:
        return f"{'-' if b is None else format(b, fmt)} -> {'-' if n is None else format(n, fmt)}"

    for r in rows:
        t.add_row(
            str(r["target"]),
            pair(100 * r["share_baseline"], 100 * r["share_new"], ".0f") + " %",
            pair(r["p95_ms_baseline"], r["p95_ms_new"], ".0f") + " ms",
            pair(r["n5xx_baseline"], r["n5xx_new"], "d"),
        )
    return t
