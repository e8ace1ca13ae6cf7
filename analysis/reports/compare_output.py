"""Where a comparison goes: compare.json and compare.html in a folder, and its gates as JUnit
test cases."""

from __future__ import annotations

import json
from pathlib import Path

from analysis.compare import Comparison
from analysis.compare.tune import TuneComparison
from analysis.reports import compare_html, junit
from core import __version__


def write(cmp: Comparison, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    js = out / "compare.json"
    js.write_text(json.dumps(cmp.to_dict(), indent=2, default=str), encoding="utf-8")
    page = out / "compare.html"
    page.write_text(compare_html.render(cmp, version=__version__), encoding="utf-8")
    return [js, page]


def write_tune(cmp: TuneComparison, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    js = out / "compare-tune.json"
    js.write_text(json.dumps(cmp.to_dict(), indent=2, default=str), encoding="utf-8")
    return [js]


def junit_cases(cmp: Comparison) -> list[junit.Case]:
    """One test case per gate: the judgement (fails on an overall 'fail'), then each --fail-on."""
    cases = []
    for g in cmp.gates:
        detail = g.message
        if g.name == "judgement":
            detail = "\n".join([g.message, *cmp.overall.reasons, *cmp.changes])
        cases.append(junit.Case(g.name, g.passed, g.message, detail))
    return cases


def tune_cases(cmp: TuneComparison) -> list[junit.Case]:
    msg = f"tune sessions: {cmp.result}" + (f": {cmp.reasons[0]}" if cmp.reasons else "")
    return [junit.Case("judgement", cmp.result != "fail", msg, "\n".join([msg, *cmp.reasons]))]


def gate_cases(breaches: list[dict], headline: str) -> list[junit.Case]:
    """`analyze` / `run`: one test case per --fail-on threshold; with none, one passing case
    that carries the verdict (a CI report then still shows what the run found)."""
    if not breaches:
        return [junit.Case("verdict", True, headline, headline)]
    out = []
    for b in breaches:
        v = "unmeasured" if b["value"] is None else f"{b['value']:.4g}"
        msg = f"{b['threshold']}: measured {v}" + (" - breached" if b["breached"] else "")
        out.append(junit.Case(b["threshold"], not b["breached"], msg, f"{msg}\n{headline}"))
    return out
