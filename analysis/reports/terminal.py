"""The terminal summary (rich): verdict, causes with evidence and fixes, the cross table."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from analysis.verdict import Verdict

_STYLE = {
    "proxy": "red",
    "cors-setup": "magenta",
    "none": "green",
    "insufficient-evidence": "yellow",
}


def print_summary(
    v: Verdict,
    *,
    console: Console | None = None,
    breaches: list[dict[str, Any]] | None = None,
    extra_tables: dict[str, list[dict[str, Any]]] | None = None,
    outputs: list[str] | None = None,
) -> None:
    con = console or Console()
    style = _STYLE.get(v.at_fault, "white")
    con.print(Panel(escape(v.headline), title=f"at fault: {v.at_fault}", border_style=style))
    for c in v.caveats:
        con.print(f"[yellow]caveat:[/yellow] {escape(c)}")
    if v.causes:
        t = Table(title="causes", show_lines=True)
        t.add_column("cause", style="bold")
        t.add_column("strength", justify="right")
        t.add_column("evidence")
        t.add_column("fix")
        for c in v.causes:
            t.add_row(
                c.id,
                f"{c.strength:.2f}",
                escape(
                    "\n".join(
                        [f"- {e}" for e in c.evidence]
                        + ([f"- {c.window.describe()}"] if c.window else [])
                    )
                ),
                escape(c.fix),
            )
        con.print(t)
    if v.cross_table:
        t = Table(title="source x CORS verdict")
        for col in ("source", "cors", "count"):
            t.add_column(col, justify="right" if col == "count" else "left")
        for r in v.cross_table:
            t.add_row(str(r["source"]), str(r["cors"]), f"{r['count']:,}")
        con.print(t)
    split = v.figures.target_breakdown or {}
    if len(split.get("targets") or []) >= 2:
        t = Table(title=f"targets (proxy 5xx from the {split.get('source') or 'proxy log'})")
        for col in ("target", "answered", "proxy 5xx", "not healthy / samples"):
            t.add_column(col, justify="left" if col == "target" else "right")
        for r in split["targets"]:
            t.add_row(
                str(r["target"]),
                f"{r['answered']:,}",
                f"{r['failed']:,}",
                f"{r['unhealthy_samples']:,} / {r['health_samples']:,}",
            )
        con.print(t)
        if split.get("no_target"):
            con.print(f"  {split['no_target']:,} proxy 5xx found no routable target")
    for name, rows in (extra_tables or {}).items():
        if not rows:
            continue
        t = Table(title=name)
        for col in rows[0]:
            t.add_column(str(col))
        for r in rows[:20]:
            t.add_row(*[escape(str(x)) for x in r.values()])
        if len(rows) > 20:
            con.print(f"[dim]{name}: first 20 of {len(rows)} rows (all in summary.json)[/dim]")
        con.print(t)
    for f in v.security_findings:
        con.print(
            f"[red]CORS security finding[/red] ({escape(str(f.get('severity')))}): "
            f"{escape(str(f.get('check')))} - {escape(str(f.get('detail')))}"
        )
    for m in v.missing_evidence:
        con.print(f"[yellow]missing evidence:[/yellow] {escape(m)}")
    for p in (v.figures.get("parse") or {}).values():
        if p.get("malformed") or p.get("truncated_files") or p.get("unreadable_files"):
            con.print(
                f"[yellow]{p['input']} logs:[/yellow] {p['malformed']:,} malformed of {p['lines']:,} lines"
                + (
                    f", truncated: {', '.join(p['truncated_files'])}"
                    if p.get("truncated_files")
                    else ""
                )
                + (
                    f", cannot be decompressed (corrupt .gz): {', '.join(p['unreadable_files'])}"
                    if p.get("unreadable_files")
                    else ""
                )
            )
        if p.get("copies"):
            con.print(
                f"[yellow]{p['input']} logs:[/yellow] {len(p['copies'])} object(s) found twice, "
                f"read once (copy = original: {escape(p['copies'][0])}"
                + (", ..." if len(p["copies"]) > 1 else "")
                + ")"
            )
    for b in breaches or []:
        mark = "[red]BREACHED[/red]" if b["breached"] else "[green]ok[/green]"
        con.print(f"--fail-on {b['threshold']}: {mark} (measured {b['value']})")
    for o in outputs or []:
        con.print(f"[dim]wrote {o}[/dim]")
