"""Each run's verdict and ranked causes (the public verdict API), and what changed between them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from analysis import pipeline
from analysis.verdict import Cause, Verdict


def run_verdict(path: Path) -> tuple[Verdict, str]:
    """The verdict `albprobe analyze` wrote (report/summary.json) when there is one, else the
    run analysed now (nothing written); the second value says which."""
    summary = path / "report" / "summary.json"
    if summary.exists():
        try:
            d = json.loads(summary.read_text(encoding="utf-8"))
            return _from_summary(d), str(summary)
        except (OSError, ValueError, KeyError, TypeError):
            pass  # unreadable: analyse again
    return pipeline.analyze_run(path, write=False).verdict, "analysed now"


def _from_summary(d: dict[str, Any]) -> Verdict:
    causes = [
        Cause(
            str(c["id"]),
            float(c["strength"]),
            list(c.get("evidence") or []),
            str(c.get("fix") or ""),
        )
        for c in d.get("causes") or []
    ]
    return Verdict(str(d["at_fault"]), str(d["headline"]), causes)


def changes(base: Verdict, new: Verdict) -> list[str]:
    """Sentences: the party at fault, causes that appeared or went, strengths that moved."""
    out = []
    if base.at_fault != new.at_fault:
        out.append(f"at fault: {base.at_fault} -> {new.at_fault}")
    bc = {c.id: c for c in base.causes}
    nc = {c.id: c for c in new.causes}
    for cid, c in nc.items():
        if cid not in bc:
            ev = f": {c.evidence[0]}" if c.evidence else ""
            out.append(f"new cause: {cid} (strength {c.strength:.2f}){ev}")
        elif c.strength - bc[cid].strength >= 0.2:
            out.append(f"stronger cause: {cid} ({bc[cid].strength:.2f} -> {c.strength:.2f})")
    for cid, c in bc.items():
        if cid not in nc:
            out.append(f"cause gone: {cid} (was {c.strength:.2f})")
    return out


def new_cause_ids(base: Verdict, new: Verdict) -> list[str]:
    have = {c.id for c in base.causes}
    return [c.id for c in new.causes if c.id not in have]


def summary(v: Verdict, source: str) -> dict[str, Any]:
    return {
        "at_fault": v.at_fault,
        "headline": v.headline,
        "causes": [{"id": c.id, "strength": round(c.strength, 3)} for c in v.causes],
        "from": source,
    }
