"""The terminal summary (rich): verdict, causes with evidence and fixes, the cross table."""

from __future__ import annotations

import re
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
        # fold, not ellipsis: a fix's command is copied from here whole
        t.add_column("evidence", overflow="fold")
        t.add_column("fix", overflow="fold")
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
        # no health samples (ALB logs alone): "0 / 0" on every row would read as "healthy"
        health = any(r["health_samples"] for r in split["targets"])
        cols = ["target", "answered", "proxy 5xx"] + (["not healthy / samples"] if health else [])
        for col in cols:
            t.add_column(col, justify="left" if col == "target" else "right")
        for r in split["targets"]:
            t.add_row(
                str(r["target"]),
                f"{r['answered']:,}",
                f"{r['failed']:,}",
                *([f"{r['unhealthy_samples']:,} / {r['health_samples']:,}"] if health else []),
            )
        con.print(t)
        if split.get("no_target"):
            con.print(f"  {split['no_target']:,} proxy 5xx found no routable target")
    for name, rows in (extra_tables or {}).items():
        if not rows:
            continue
        if len(rows) > 20:
            con.print(f"[dim]{name}: first 20 of {len(rows)} rows (all in summary.json)[/dim]")
        con.print(_rows_table(name, rows[:20]))
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


_ORIGIN = re.compile(r"^[a-z][a-z0-9+.-]*://[^/]+")
# Short headers for the ALB tables' counts (their keys in summary.json, docs/analysis.md): an
# 80-column terminal holds a minute, a target and six counts only with short headers
_LABELS = {
    "keepalive_signature": "race",
    "timeout_kill": "killed",
    "closed_late": "closed",
    "connect_failed": "no conn",
    "target_5xx": "tgt 5xx",
    "target_p99_ms": "tgt p99 ms",
    "requests": "reqs",
}


def _rows_table(name: str, rows: list[dict[str, Any]]) -> Table:
    """A table of figure rows that stays readable in an 80-column terminal: cells wrap instead of
    ending in an ellipsis (every target and URL looked alike), numbers are right-aligned, and
    URLs of one origin show their path under it, the origin in the title."""
    urls = {str(r["url"]) for r in rows if r.get("url")}
    found = {m.group(0) for u in urls if (m := _ORIGIN.match(u))}
    origin = (
        next(iter(found))
        if len(found) == 1 and len(urls) == sum(1 for u in urls if _ORIGIN.match(u))
        else None
    )
    numeric = {col: all(_number(r.get(col)) for r in rows) for col in rows[0]}
    # a count that is 0 on every row says nothing here (summary.json keeps it): the columns
    # that did fire get the width
    zero = [c for c in rows[0] if numeric[c] and not any(r.get(c) for r in rows)]
    cols = [c for c in rows[0] if c not in zero]
    # minutes of one day: the day goes in the title, the column keeps the time
    days = {str(r["minute"])[:10] for r in rows if r.get("minute")}
    day = days.pop() if len(days) == 1 and all(r.get("minute") for r in rows) else None
    if day:
        rows = [{**r, "minute": str(r["minute"])[11:]} for r in rows]
    where = [x for x in (origin, f"{day} UTC" if day else None) if x]
    t = Table(
        title=f"{name} ({', '.join(where)})" if where else name,
        caption=(
            f"0 in every row: {', '.join(_LABELS.get(c, c.replace('_', ' ')) for c in zero)}"
            if zero
            else None
        ),
    )
    cells = [[_cell(c, r.get(c), origin) for c in cols] for r in rows]
    for i, col in enumerate(cols):
        # the names of targets and URLs get the room first, the counts take what is left
        widest = max(len(c[i]) for c in cells)
        t.add_column(
            _LABELS.get(col, str(col).replace("_", " ")),
            justify="right" if numeric[col] else "left",
            overflow="fold",
            min_width=None if numeric[col] else min(widest, 28),
        )
    for c in cells:
        t.add_row(*[escape(x) for x in c])
    return t


def _number(v: Any) -> bool:
    """A count or a measure (None: not measured); a yes/no is not one, even as a 0."""
    return v is None or (isinstance(v, int | float) and not isinstance(v, bool))


def _cell(col: str, v: Any, origin: str | None) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    if col == "url" and origin and str(v).startswith(origin):
        return str(v)[len(origin) :] or "/"
    return str(v)
