"""Render check findings: a rich table in the runbook's order plus copy-pasteable fixes, or JSON."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from probes.aws.checks import STATUSES, Finding, exit_code

_STYLE = {
    "pass": "green",
    "fail": "bold red",
    "warn": "yellow",
    "error": "bold magenta",
    "skip": "dim",
}


def summary(findings: Sequence[Finding]) -> dict[str, int]:
    counts = Counter(f.status for f in findings)
    return {s: counts.get(s, 0) for s in STATUSES}


def to_json(findings: Sequence[Finding], meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema_version": 1,
        **meta,
        "exit_code": exit_code(findings),
        "summary": summary(findings),
        "findings": [f.to_dict() for f in findings],
    }


def render(findings: Sequence[Finding], meta: dict[str, Any], console: Any) -> None:
    """A table (one row per finding), then every fix on its own unwrapped line."""
    from rich.table import Table
    from rich.text import Text

    title = f"albprobe check: {meta.get('load_balancer')} ({meta.get('region')})"
    table = Table(title=title, show_lines=False, expand=False)
    for col, kw in (
        ("section", {"no_wrap": True}),
        ("check", {"no_wrap": True}),
        ("status", {"no_wrap": True}),
        ("severity", {"no_wrap": True}),
        ("resource", {"overflow": "fold"}),
        ("evidence", {"overflow": "fold", "ratio": 1}),
    ):
        table.add_column(col, **kw)
    last = None
    for f in findings:
        section = f.section if f.section != last else ""
        last = f.section
        table.add_row(
            Text(section),
            Text(f.id),
            Text(f.status.upper(), style=_STYLE.get(f.status, "")),
            Text(f.severity),
            Text(f.resource),
            Text(f.evidence),
        )
    console.print(table)
    fixes = [f for f in findings if f.status in ("fail", "warn", "error") and f.remediation]
    if fixes:
        console.print(Text("Fixes (albprobe changes nothing; run these yourself):", style="bold"))
        for f in fixes:
            console.print(Text(f"[{f.status}] {f.id} {f.resource}", style=_STYLE[f.status]))
            console.print(Text(f"  {f.remediation}"), soft_wrap=True)
    counts = summary(findings)
    code = exit_code(findings)
    console.print(
        Text(
            f"{len(findings)} findings: "
            + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
            + f" -> exit code {code}"
        )
    )
