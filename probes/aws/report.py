"""Render check findings: a rich table in the runbook's order plus copy-pasteable fixes, or JSON."""

from __future__ import annotations

import textwrap
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
WIDE = 120  # below this many columns a table squeezes the evidence unreadably: list instead


def summary(findings: Sequence[Finding]) -> dict[str, int]:
    counts = Counter(f.status for f in findings)
    return {s: counts.get(s, 0) for s in STATUSES}


def fixes(findings: Sequence[Finding]) -> list[Finding]:
    """The findings whose fix the report prints, in order; a fix two findings share comes once."""
    seen: set[str] = set()
    out = []
    for f in findings:
        if f.status in ("fail", "warn", "error") and f.remediation and f.remediation not in seen:
            seen.add(f.remediation)
            out.append(f)
    return out


def to_json(findings: Sequence[Finding], meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema_version": 1,
        **meta,
        "exit_code": exit_code(findings),
        "summary": summary(findings),
        "findings": [f.to_dict() for f in findings],
    }


def _table(findings: Sequence[Finding], title: str, console: Any) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, expand=True)
    table.add_column("status", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("check", overflow="fold", ratio=2)
    table.add_column("resource", overflow="fold", ratio=2)
    table.add_column("evidence", overflow="fold", ratio=6)
    section = None
    for f in findings:
        if f.section != section:
            section = f.section
            table.add_row("", "", Text(section.upper(), style="bold cyan"), "", "")
        table.add_row(
            Text(f.status.upper(), style=_STYLE.get(f.status, "")),
            Text(f.severity),
            Text(f.id),
            Text(f.resource),
            Text(f.evidence),
        )
    console.print(table)


def _list(findings: Sequence[Finding], title: str, console: Any) -> None:
    from rich.text import Text

    console.print(Text(title, style="bold"))
    section = None
    for f in findings:
        if f.section != section:
            section = f.section
            console.print(Text(f"\n{section.upper()}", style="bold cyan"))
        line = Text(f"{f.status.upper():5}", style=_STYLE.get(f.status, ""))
        line.append(f" {f.id} [{f.severity}] {f.resource}")
        console.print(line)
        body = textwrap.fill(
            f.evidence,
            width=max(40, console.width - 1),
            initial_indent=" " * 6,
            subsequent_indent=" " * 6,
            break_on_hyphens=False,
        )
        console.print(Text(body, style="dim" if f.status == "pass" else ""), soft_wrap=True)


def render(findings: Sequence[Finding], meta: dict[str, Any], console: Any) -> None:
    """The findings (a table on wide terminals, a list otherwise), then each fix on one line."""
    from rich.text import Text

    title = f"albprobe check: {meta.get('load_balancer')} ({meta.get('region')})"
    if meta.get("endpoint_url"):  # not AWS's own endpoint (moto, LocalStack, a VPC endpoint)
        title += f" at {meta['endpoint_url']}"
    if console.width >= WIDE:
        _table(findings, title, console)
    else:
        _list(findings, title, console)
    todo = fixes(findings)
    if todo:
        console.print(Text("\nFixes (albprobe changes nothing; run these yourself):", style="bold"))
        for f in todo:
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
